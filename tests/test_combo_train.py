"""`samrl train` on a tiny COMBO config: loss, sharpness (dynamics included) and dynamics CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers.combo import CONFIG

from samrl.config import load_config
from samrl.run.train import run_training


def _table(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_samrl_train_runs_combo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "combo.yaml"
    path.write_text(CONFIG.replace("OUT", str(tmp_path / "runs")))
    config = load_config(path)
    result = run_training(config, progress=False)
    assert result.status == "completed", result.message

    loss = _table(result.run_dir / "loss.csv")
    assert [r["epoch"] for r in loss] == ["1", "2"]
    assert {"critic_loss", "td_loss", "conservative_loss", "actor_loss"} <= set(loss[0])
    sharpness = _table(result.run_dir / "sharpness.csv")
    columns = set(sharpness[0])
    for net in ("critic", "actor", "dynamics"):
        assert {f"{net}_sharpness", f"{net}_loss_perturbed", f"{net}_grad_norm"} <= columns
    assert sharpness[0]["dynamics_sharpness"] != ""  # the pretraining's mean, in epoch 1
    dynamics = _table(result.run_dir / "dynamics.csv")
    assert 1 <= len(dynamics) <= 3
    assert list(dynamics[0])[:4] == ["epoch", "train_nll", "val_nll", "val_mse"]
    assert "dynamics_sharpness" in dynamics[0]
    assert list((result.run_dir / "d3rlpy").glob("model_*.d3"))
