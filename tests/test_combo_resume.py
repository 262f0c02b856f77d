"""COMBO resumes exactly: its model buffer travels in samrl's resume checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.combo import CONFIG

from samrl.config import load_config
from samrl.run.train import run_training
from samrl.rundir import RunDir

NAMES = ("loss.csv", "sharpness.csv", "eval.csv")


def test_interrupted_combo_run_resumes_to_the_same_csvs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rollouts every 7 steps: the buffer at the crash holds rollouts of earlier policies
    text = CONFIG.replace("OUT", str(tmp_path / "runs")).replace(
        "rollout_interval: 10", "rollout_interval: 7"
    )
    text = text.replace("n_steps: 20, n_steps_per_epoch: 10", "n_steps: 30, n_steps_per_epoch: 10")
    path = tmp_path / "combo.yaml"
    path.write_text(text)
    config = load_config(path)
    reference = run_training(config, progress=False)
    assert reference.status == "completed", reference.message
    expected = {n: (reference.run_dir / n).read_bytes() for n in NAMES}

    real = RunDir.save_checkpoint

    def crash_at_epoch_3(run: RunDir, algo: Any, epoch: int, step: int, extra: Any) -> None:
        if epoch == 3:
            raise RuntimeError("simulated crash")
        real(run, algo, epoch, step, extra)

    with monkeypatch.context() as patch:
        patch.setattr(RunDir, "save_checkpoint", crash_at_epoch_3)
        crashed = run_training(config, overwrite=True, progress=False)
    assert crashed.status == "failed"
    resumed = run_training(config, resume=True, progress=False)
    assert resumed.status == "completed", resumed.message
    assert {n: (resumed.run_dir / n).read_bytes() for n in NAMES} == expected
