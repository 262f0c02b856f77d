"""A run's own config.yaml is a config: `samrl train --config <run>/config.yaml` makes the same
run again, byte for byte (what a reader of committed results does to check one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, tiny_config, write_config

from samrl.rundir import RunDir

CSVS = ("loss.csv", "eval.csv", "sharpness.csv")


def test_a_runs_config_yaml_trains_the_same_run_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tmp_path, optim={"probe": {"rho": 0.05, "every": 5}})
    config["train"] = {**config["train"], "eval_episodes": 1}
    first = tmp_path / "first"
    code, _, err = run_cli(
        [
            "train",
            "--config",
            str(write_config(tmp_path, config)),
            "--set",
            f"output.run_dir={first}",
        ],
        capsys,
    )
    assert code == 0, err
    assert "samrl" in RunDir(first).read_config()  # the run's record is in the file
    again = tmp_path / "again"
    code, _, err = run_cli(
        ["train", "--config", str(first / "config.yaml"), "--set", f"output.run_dir={again}"],
        capsys,
    )
    assert code == 0, err
    for name in CSVS:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    assert RunDir(again).saved_hash() == RunDir(first).saved_hash()
