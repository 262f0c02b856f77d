"""samrl's extension point for its own algorithms (samrl/run/hooks.py), honoured by train.

A second implementer besides COMBO: behaviour cloning that counts its updates outside its
torch modules (restored only through the checkpoint hooks) and has a pretraining stage that
writes a file into the run directory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from conftest import crash_before_checkpoint, tiny_config
from d3rlpy.algos import BC, BCConfig
from d3rlpy.base import DeviceArg

import samrl.algos
from samrl.algos import algorithm_table
from samrl.combo import COMBO, COMBOConfig
from samrl.config import load_config
from samrl.run.hooks import NO_HOOKS, TrainingHooks, training_hooks
from samrl.run.train import run_training

PRETRAIN_FILE = "pretrain.txt"


class CountingBC(BC, TrainingHooks):
    """BC whose update counter lives outside its modules: only the hooks carry it over."""

    updates = 0

    def samrl_pretrain(
        self,
        dataset: Any,
        *,
        run_dir: Path | str | None = None,
        progress: bool = False,
        stream: IO[str] | None = None,
    ) -> list[dict[str, float]]:
        assert self.impl is not None and run_dir is not None  # built, in its run
        with (Path(run_dir) / PRETRAIN_FILE).open("a") as f:
            f.write(f"{dataset.transition_count}\n")
        return [{"epoch": 1.0}]

    def samrl_checkpoint_state(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def samrl_restore_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.updates = state["updates"]

    def update(self, batch: Any) -> dict[str, float]:
        self.updates += 1
        return {**super().update(batch), "updates": float(self.updates)}


@dataclasses.dataclass()
class CountingBCConfig(BCConfig):
    def create(self, device: DeviceArg = False, enable_ddp: bool = False) -> CountingBC:
        return CountingBC(self, device, enable_ddp)

    @staticmethod
    def get_type() -> str:
        return "counting_bc"


@pytest.fixture
def with_counting_bc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """counting_bc in samrl's algorithm table (one more entry of samrl's own algorithms)."""
    own = samrl.algos.OWN_ALGORITHMS
    monkeypatch.setattr(samrl.algos, "OWN_ALGORITHMS", (*own, CountingBCConfig))
    algorithm_table.cache_clear()
    yield
    algorithm_table.cache_clear()  # before monkeypatch restores the real list


def _config(tmp_path: Path) -> Any:
    raw = tiny_config(
        tmp_path,
        algo={"name": "counting_bc", "params": {"batch_size": 16}},
        train={"n_steps": 30, "n_steps_per_epoch": 10, "eval_episodes": 0},
    )
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_train_calls_the_hooks_a_second_algorithm_declares(
    tmp_path: Path, with_counting_bc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    reference = run_training(config, progress=False)
    assert reference.status == "completed", reference.message
    # the stage ran once, before the first update, on the training set
    stage = (reference.run_dir / PRETRAIN_FILE).read_text()
    assert len(stage.splitlines()) == 1 and int(stage) > 900  # pendulum-random, size 1000
    expected = (reference.run_dir / "loss.csv").read_bytes()
    counts = [line.split(",") for line in expected.decode().splitlines()]
    column = counts[0].index("updates")
    assert [float(row[column]) for row in counts[1:]] == [5.5, 15.5, 25.5]  # means of 1..10, ...

    with monkeypatch.context() as patch:
        crash_before_checkpoint(patch, 2)
        crashed = run_training(config, overwrite=True, progress=False)
    assert crashed.status == "failed"
    resumed = run_training(config, resume=True, progress=False)
    assert resumed.status == "completed", resumed.message
    # not pretrained again on resume; the counter came back through the checkpoint hooks
    # (restarting it at 0 would make epochs 2-3 average 5.5 and 15.5)
    assert (resumed.run_dir / PRETRAIN_FILE).read_text() == stage
    assert (resumed.run_dir / "loss.csv").read_bytes() == expected


def test_train_finds_hooks_by_the_declared_type() -> None:
    combo = COMBOConfig().create()
    assert training_hooks(combo) is combo
    # d3rlpy's algorithms declare nothing and get hooks that do nothing
    plain = BCConfig().create()
    assert training_hooks(plain) is NO_HOOKS
    assert NO_HOOKS.samrl_checkpoint_state() == {}
    assert NO_HOOKS.samrl_pretrain(None) == []  # type: ignore[arg-type]

    # a method of the right name on an undeclared class is not a hook: the type decides
    class Undeclared(BC):
        def samrl_checkpoint_state(self) -> dict[str, Any]:
            return {"x": 1}

    assert training_hooks(Undeclared(BCConfig(), False, False)) is NO_HOOKS


def test_a_misspelt_hook_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="samrl_pre_train, which is not a samrl training hook"):

        class Misspelt(COMBO):
            def samrl_pre_train(self) -> None:
                pass
