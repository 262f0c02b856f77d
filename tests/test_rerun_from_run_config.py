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
    record = RunDir(first).read_config()
    assert "samrl" in record  # the run's record is in the file
    assert "run_dir" not in record["output"]  # and no machine path
    again = tmp_path / "again"
    code, _, err = run_cli(
        ["train", "--config", str(first / "config.yaml"), "--set", f"output.run_dir={again}"],
        capsys,
    )
    assert code == 0, err
    for name in CSVS:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    assert RunDir(again).saved_hash() == RunDir(first).saved_hash()


def test_shipped_configs_hold_no_machine_path() -> None:
    """Every committed run record under results/: no output.run_dir, and its config hash is
    still the one recorded when it ran (removing the path changed no result)."""
    from samrl.config.resolve import resolve
    from samrl.config.yamlio import read_yaml

    records = sorted((Path(__file__).parents[1] / "results").glob("*/runs/*/config.yaml"))
    assert records
    for path in records:
        raw = read_yaml(path)
        assert "run_dir" not in raw.get("output", {}), path
        assert "/work/" not in path.read_text(), path
    for path in records[:: max(1, len(records) // 40)]:  # resolving all ~400 takes a while
        raw = read_yaml(path)
        config = resolve(raw, source=str(path), check_dataset=False)
        assert config.result_hash() == raw["samrl"]["config_hash"], path
