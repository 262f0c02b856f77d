"""Output that is not a terminal (log files, pipes, batch jobs): no carriage-return progress
bars; `train` prints one line per epoch and `sweep` one line per finished run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from conftest import tiny_config, write_config


def test_train_writes_one_line_per_epoch_into_a_log_file(tmp_path: Path):
    config = tiny_config(tmp_path, train={"n_steps": 40, "n_steps_per_epoch": 10})
    path = write_config(tmp_path, config)
    log = tmp_path / "train.log"
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "samrl", "train", "--config", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\r" not in text
    epochs = [line for line in text.splitlines() if ": epoch " in line]
    assert [line.split(": epoch ")[1].split()[0] for line in epochs] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("critic_loss=" in line and "critic_sharpness=" in line for line in epochs)
    assert text.splitlines()[-1].startswith("samrl: run completed")


def test_sweep_prints_one_line_per_finished_run_into_a_pipe(tmp_path: Path):
    config = tiny_config(tmp_path, train={"n_steps": 10, "n_steps_per_epoch": 10})
    del config["output"], config["name"]
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "samrl", "sweep", "--config", str(tmp_path / "base.yaml")]
    command += ["--rho", "0,0.1", "--out", str(tmp_path / "out"), "--name", "s", "--jobs", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout + done.stderr
    finished = [line for line in done.stdout.splitlines() if line.startswith("samrl: [")]
    assert [line.split("]")[0] for line in finished] == ["samrl: [1/2", "samrl: [2/2"]
    assert all(" completed " in line for line in finished)


def test_dataset_generation_draws_no_bar_into_a_log_file(tmp_path: Path):
    """Generating a dataset (here, or on first use inside a sweep worker) shows a bar on a
    terminal only: a log gets no carriage-return redraws, and the summary line still comes."""
    import os

    log = tmp_path / "data.log"
    env = {**os.environ, "SAMRL_DATA_DIR": str(tmp_path / "cache")}
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "samrl", "data", "make", "pendulum-medium", "--size", "2000"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=300,
        )
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\r" not in text and "%|" not in text
    assert list((tmp_path / "cache").rglob("*.hdf5")), text
    assert "pendulum-medium" in text.splitlines()[-1]


def test_a_long_counted_bar_in_a_log_is_a_line_per_tenth(monkeypatch) -> None:
    import io

    from samrl.progress import LineProgress, step_bar

    monkeypatch.setattr(LineProgress, "REPORT_AFTER_S", 0.0)  # as if each step took minutes
    log = io.StringIO()
    with step_bar(100, "collecting x", "step", True, file=log) as bar:
        for _ in range(100):
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert lines[0] == "collecting x: 100 steps"
    assert [line.split(" (")[0] for line in lines[1:-1]] == [
        f"collecting x: {n}/100" for n in range(10, 100, 10)
    ]
    assert lines[-1].startswith("collecting x: 100/100 steps in ")
    silent = io.StringIO()
    with step_bar(100, "collecting x", "step", False, file=silent) as bar:
        bar.update(100)
    assert silent.getvalue() == ""
