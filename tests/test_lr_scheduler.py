"""optim.lr_scheduler: a d3rlpy learning-rate scheduler on chosen networks (IQL's reproduction
anneals only the actor's rate). The rate a saved model carries is recomputed from the cosine's
closed form; SAM at rho 0 stays Adam bitwise with a scheduler too; configs that do not set the
key are written and hashed as before."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import d3rlpy
import pytest
import yaml
from conftest import run_cli, tiny_config, write_config

from samrl.config import load_config

LR = 3e-4
COSINE = {"type": "cosine_annealing", "params": {"T_max": 30}}
IQL = {
    "name": "iql",
    "params": {
        "batch_size": 16,
        "actor_learning_rate": LR,
        "critic_learning_rate": LR,
        "actor_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
        "critic_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
        "value_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
    },
}


def train(tmp_path: Path, capsys: pytest.CaptureFixture[str], run: str, **optim: Any) -> Path:
    """20 IQL updates (2 epochs) with `optim`, as experiment `run`; its run directory."""
    config = tiny_config(tmp_path, name=run, algo=IQL, optim=optim, train={"n_steps": 20})
    path = write_config(tmp_path, config, f"{run}.yaml")
    code, _, err = run_cli(["train", "--config", str(path), "--quiet"], capsys)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / run).iterdir()
    return run_dir


def learning_rates(run_dir: Path, step: int) -> dict[str, float]:
    """The learning rate each optimizer of the model saved at `step` will use next."""
    algo = d3rlpy.load_learnable(str(run_dir / "d3rlpy" / f"model_{step}.d3"))
    modules = algo.impl.modules
    return {
        net: getattr(modules, f"{net}_optim").optim.param_groups[0]["lr"]
        for net in ("actor", "critic")
    }


@pytest.mark.parametrize("optim", [{"name": "sam", "rho": 0.05}, {"name": "adam"}])
def test_the_scheduler_anneals_only_its_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], optim: dict[str, Any]
) -> None:
    run_dir = train(tmp_path, capsys, "cosine", **optim, lr_scheduler={"actor": COSINE})
    # torch's CosineAnnealingLR is recursive; its closed form after t steps of T_max:
    for step in (10, 20):
        expected = LR * (1 + math.cos(math.pi * step / 30)) / 2
        rates = learning_rates(run_dir, step)
        # one scheduler step per update, also when SAM computes two gradients
        assert rates["actor"] == pytest.approx(expected, rel=1e-9)
        assert rates["critic"] == LR
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["optim"]["lr_scheduler"] == {"actor": COSINE}


def test_sam_at_rho_0_with_a_scheduler_is_adam_with_it_bitwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = {"actor": COSINE, "critic": {"type": "cosine_annealing", "params": {"T_max": 10}}}
    sam = train(tmp_path, capsys, "sam0", name="sam", rho=0.0, lr_scheduler=schedule)
    adam = train(tmp_path, capsys, "adam", name="adam", lr_scheduler=schedule)
    constant = train(tmp_path, capsys, "constant", name="adam")
    assert (sam / "loss.csv").read_bytes() == (adam / "loss.csv").read_bytes()
    # ... and the schedule is not a no-op: the critic's rate is 0 after 10 updates
    assert (adam / "loss.csv").read_bytes() != (constant / "loss.csv").read_bytes()
    assert learning_rates(adam, 10) == pytest.approx({"actor": learning_rates(sam, 10)["actor"],
                                                       "critic": 0.0}, abs=1e-12)  # fmt: skip


def test_unset_the_key_is_not_written_and_set_it_changes_the_hash(tmp_path: Path) -> None:
    plain = tiny_config(tmp_path)
    scheduled = tiny_config(tmp_path, optim={"name": "sam", "lr_scheduler": {"critic": COSINE}})
    a = load_config(write_config(tmp_path, plain, "a.yaml"))
    b = load_config(write_config(tmp_path, scheduled, "b.yaml"))
    assert "lr_scheduler" not in a.to_yaml()
    assert "lr_scheduler" in b.to_yaml()
    assert a.result_hash() != b.result_hash()
    # the old name of a single network is accepted and written under the new one
    dqn = tiny_config(
        tmp_path,
        algo={"name": "dqn", "params": {"batch_size": 16}},
        dataset={"name": "cartpole-random"},
        optim={"name": "sam", "lr_scheduler": {"loss": COSINE}},
    )
    assert load_config(write_config(tmp_path, dqn, "d.yaml")).optim.lr_scheduler == {"q": COSINE}


def test_trying_the_optimizers_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    """Resolving tries every base optimizer and scheduler on a throwaway parameter; that
    parameter is made without randomness, so the seeds of the run are untouched."""
    import numpy as np
    import torch

    config = tiny_config(
        tmp_path,
        optim={"name": "sam", "params": {"eps": 1e-6}, "lr_scheduler": {"critic": COSINE}},
    )
    path = write_config(tmp_path, config)
    torch.manual_seed(3)
    np.random.seed(3)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy())
    load_config(path)
    assert torch.equal(torch.get_rng_state(), before[0])
    assert (np.random.get_state()[1] == before[1]).all()


@pytest.mark.parametrize(
    ("algo", "schedule", "culprit", "message"),
    [
        ("cql", {"actr": COSINE}, "optim.lr_scheduler.actr", "did you mean 'actor'"),
        ("cql", {"temp": COSINE}, "optim.lr_scheduler.temp", "network for cql"),
        ("cql", {"actor": {"type": "cosine"}}, "optim.lr_scheduler.actor.type", "unknown type"),
        ("cql", {"actor": "cosine"}, "optim.lr_scheduler.actor", "{type: <name>"),
        ("cql", "cosine", "optim.lr_scheduler", "must be a mapping"),
        ("cql", {}, "optim.lr_scheduler", "leave the key out"),
        (
            "cql",
            {"actor": {"type": "cosine_annealing", "params": {"T_max": 0}}},
            "optim.lr_scheduler.actor",
            "rejected by torch: ZeroDivisionError",
        ),
        (
            "cql",
            {"actor": {"type": "cosine_annealing", "params": {"T_mx": 5}}},
            "optim.lr_scheduler.actor.params",
            "cosine_annealing needs parameter 'T_max'",
        ),
        (
            "cql",
            {"actor": {"type": "cosine_annealing", "params": {"T_max": 5, "eta_mn": 0}}},
            "optim.lr_scheduler.actor.params.eta_mn",
            "did you mean 'eta_min'",
        ),
        # PLAS builds its imitator's optimizer from the critic's factory
        ("plas", {"critic": COSINE}, "optim.lr_scheduler.critic", "give both the same"),
    ],
)
def test_a_bad_scheduler_is_one_line_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    algo: str,
    schedule: Any,
    culprit: str,
    message: str,
) -> None:
    config = tiny_config(
        tmp_path,
        algo={"name": algo, "params": {"batch_size": 16}},
        optim={"name": "sam", "lr_scheduler": schedule},
    )
    path = write_config(tmp_path, config)
    code, _, err = run_cli(["train", "--config", str(path), "--dry-run"], capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{culprit}:" in err and message in err, err
