"""Faults a long run meets: signals, a second process on the same run, a full disk, a damaged
checkpoint. Each ends in one line, loses at most the epoch in progress, and `--resume` then
gives the CSVs of an uninterrupted run."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import crash_before_checkpoint, run_cli, tiny_config, write_config

import samrl.run.stopping

TABLES = ("loss.csv", "sharpness.csv")


def config_of(tmp_path: Path, n_steps: int = 60, per_epoch: int = 20) -> dict[str, Any]:
    return tiny_config(
        tmp_path,
        algo={
            "name": "td3_plus_bc",
            "params": {
                "batch_size": 16,
                "actor_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
                "critic_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
            },
        },
        train={"n_steps": n_steps, "n_steps_per_epoch": per_epoch, "device": "cpu"},
    )


def the_run_dir(root: Path) -> Path:
    return next(root.glob("*/*/status.json")).parent


def tables(run_dir: Path) -> dict[str, bytes]:
    return {n: (run_dir / n).read_bytes() for n in TABLES}


def reference(tmp_path: Path, config: dict[str, Any], capsys: Any) -> dict[str, bytes]:
    """The same run, uninterrupted, in another output directory."""
    ref = {**config, "output": {"dir": str(tmp_path / "reference")}}
    path = write_config(tmp_path, ref, "reference.yaml")
    code, _, err = run_cli(["train", "--config", str(path), "--quiet"], capsys)
    assert code == 0, err
    return tables(the_run_dir(tmp_path / "reference"))


def status_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "status.json").read_text())


def train_process(path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "samrl", "train", "--config", str(path), "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_epoch(root: Path, process: subprocess.Popen[str], epochs: int = 1) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        found = list(root.glob("*/*/status.json"))
        if found:
            try:
                if status_of(found[0].parent).get("epochs_done", 0) >= epochs:
                    return found[0].parent
            except json.JSONDecodeError:
                pass
        time.sleep(0.05)
    raise AssertionError("the run never finished an epoch")


# ---------------------------------------------------------------- signals


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_interrupts_cleanly_and_resume_is_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signum: signal.Signals
) -> None:
    config = config_of(tmp_path, n_steps=1000, per_epoch=50)
    expected = reference(tmp_path, config, capsys)
    path = write_config(tmp_path, config)
    process = train_process(path)
    run_dir = wait_for_epoch(tmp_path / "runs", process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert err.count("\n") == 1, err
    status = status_of(run_dir)
    assert status["status"] == "interrupted"
    epoch, step = status["epochs_done"], status["steps_done"]
    assert 1 <= epoch < 20 and epoch * 50 <= step < 1000
    assert f"interrupted by {signum.name} at step {step}" in err
    assert f"epoch {epoch} is the last complete one" in err
    # the finished epochs' rows are all there, and nothing of the epoch in progress
    assert pd.read_csv(run_dir / "loss.csv")["epoch"].tolist() == list(range(1, epoch + 1))
    command = shlex.split(err.split("resume with: ")[1])
    assert command == ["samrl", "train", "--config", str(path), "--resume"]
    code, _out, err = run_cli([*command[1:], "--quiet"], capsys)
    assert code == 0, err
    assert status_of(run_dir)["status"] == "completed"
    assert tables(run_dir) == expected


def test_stop_mid_epoch_checkpoints_that_step_and_resume_is_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGTERM delivered to this process at a chosen step (the 25th update: the middle
    of epoch 2), so the mid-epoch checkpoint is exercised every time."""
    config = config_of(tmp_path)
    expected = reference(tmp_path, config, capsys)
    checks = {"n": 0}
    real = samrl.run.stopping.StopRequest.requested

    def requested(self: samrl.run.stopping.StopRequest) -> bool:
        checks["n"] += 1
        if checks["n"] == 26:  # before update 26: 25 done
            os.kill(os.getpid(), signal.SIGTERM)
        return real.fget(self)  # type: ignore[attr-defined]

    path = write_config(tmp_path, config)
    with monkeypatch.context() as patch:
        patch.setattr(samrl.run.stopping.StopRequest, "requested", property(requested))
        code, _, err = run_cli(["train", "--config", str(path), "--quiet"], capsys)
    assert code == 128 + signal.SIGTERM, err
    run_dir = the_run_dir(tmp_path / "runs")
    status = status_of(run_dir)
    assert (status["status"], status["epochs_done"], status["steps_done"]) == (
        "interrupted",
        1,
        25,
    )
    assert "interrupted by SIGTERM at step 25 (epoch 2 of 3 in progress" in err
    assert (run_dir / "checkpoint" / "state_step25.pt").exists()
    code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 0, err
    assert tables(run_dir) == expected


# ---------------------------------------------------------------- one run, one process


@pytest.mark.slow
def test_second_process_on_the_same_run_refuses_and_the_lock_dies_with_its_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_of(tmp_path, n_steps=1000, per_epoch=50)
    path = write_config(tmp_path, config)
    first = train_process(path)
    try:
        run_dir = wait_for_epoch(tmp_path / "runs", first)
        started = time.monotonic()
        code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert f"{run_dir} is in use by samrl pid {first.pid}" in err
        assert time.monotonic() - started < 10  # at once, not after the first one ends
        code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--overwrite"], capsys)
        assert code == 2 and "is in use by" in err  # --overwrite does not delete a live run
        assert first.poll() is None
    finally:
        first.kill()  # a crash: no chance to clean up
        first.communicate()
    assert status_of(run_dir)["status"] == "running"
    code, _out, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 0, err  # the dead process's lock is gone with it
    assert status_of(run_dir)["status"] == "completed"


# ---------------------------------------------------------------- damaged checkpoints


def test_truncated_checkpoint_falls_back_to_the_previous_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_of(tmp_path, n_steps=80)
    expected = reference(tmp_path, config, capsys)
    path = write_config(tmp_path, config)
    with monkeypatch.context() as patch:
        crash_before_checkpoint(patch, 4)
        assert run_cli(["train", "--config", str(path), "--quiet"], capsys)[0] == 1
    run_dir = the_run_dir(tmp_path / "runs")
    folder = run_dir / "checkpoint"
    assert sorted(p.name for p in folder.glob("state_*.pt")) == [
        "state_step40.pt",
        "state_step60.pt",
    ]  # the last two are kept
    newest = folder / "state_step60.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 0, err
    assert err.count("\n") == 1, err
    assert f"checkpoint {newest} is unreadable" in err and "the one of step 40" in err
    assert tables(run_dir) == expected


def test_the_only_checkpoint_corrupt_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_of(tmp_path)
    path = write_config(tmp_path, config)
    with monkeypatch.context() as patch:
        crash_before_checkpoint(patch, 2)
        assert run_cli(["train", "--config", str(path), "--quiet"], capsys)[0] == 1
    run_dir = the_run_dir(tmp_path / "runs")
    (only,) = (run_dir / "checkpoint").glob("state_*.pt")
    only.write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"checkpoint {only} is unreadable" in err and "no earlier checkpoint is kept" in err
    assert "--overwrite starts the run again" in err


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs (needs root and mount rights; skipped with the reason otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: cannot make a small disk to fill")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (not root?): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` (unbuffered writes, smaller and smaller)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
def test_full_disk_is_one_line_keeps_what_was_written_and_resume_is_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], small_disk: Path
) -> None:
    config = config_of(tmp_path, n_steps=1000, per_epoch=50)
    expected = reference(tmp_path, config, capsys)
    config["output"] = {"dir": str(small_disk / "runs")}
    path = write_config(tmp_path, config)
    process = train_process(path)
    run_dir = wait_for_epoch(small_disk / "runs", process)
    filler = fill(small_disk)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("samrl: run error: cannot write ")
    assert str(run_dir) in lines[0] and "No space left on device" in lines[0]
    # every row on disk is a whole row of a finished epoch; the checkpoint of the last one
    # is complete
    kept = pd.read_csv(run_dir / "loss.csv")
    epochs = kept["epoch"].tolist()
    assert epochs == list(range(1, len(epochs) + 1))
    assert kept.notna().all().all()
    filler.unlink()  # space freed
    code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 0, err
    assert tables(run_dir) == expected


# ---------------------------------------------------------------- a sweep meets all of them


def lock_holder(run_dir: Path) -> int | None:
    """The pid written in a run's lock file by the process training it."""
    try:
        text = (run_dir / ".lock").read_text()
    except OSError:
        return None
    return int(text.split()[2]) if text.startswith("samrl pid ") else None


@pytest.mark.slow
def test_sweep_with_a_crash_a_divergence_and_a_hang_completes_the_others(
    tmp_path: Path,
) -> None:
    import yaml

    config = config_of(tmp_path, n_steps=200, per_epoch=50)
    del config["output"], config["name"]
    lrs = [3e-4, 3.1e-4, 3.2e-4, 1e10]  # 1e10 diverges
    sweep = tmp_path / "faults.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "config": config,
                "out": str(tmp_path / "out"),
                "grid": {"algo.params.critic_learning_rate": lrs},
                "jobs": 4,
                "launcher": {"type": "local", "timeout_min": 1.0},
            }
        )
    )
    names = {3e-4: "0.0003", 3.1e-4: "0.00031", 3.2e-4: "0.00032", 1e10: "1e10"}
    run_ids = {
        lr: f"td3_plus_bc_pendulum-random_sam-rho0.05_critic_learning_rate{text}_s0"
        for lr, text in names.items()
    }
    runs = tmp_path / "out" / "faults" / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "samrl", "sweep", str(sweep), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    victims = {"crash": runs / run_ids[3.1e-4], "hang": runs / run_ids[3.2e-4]}
    pids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 120
        while len(pids) < 2 and time.monotonic() < deadline:
            for what, run_dir in victims.items():
                pid = lock_holder(run_dir)
                if what not in pids and pid is not None:
                    pids[what] = pid
                    # a crash (as the OOM killer does it), and a hang no signal but KILL ends
                    os.kill(pid, signal.SIGKILL if what == "crash" else signal.SIGSTOP)
            time.sleep(0.02)
        assert len(pids) == 2, "the runs never started"
        out, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, out
    final = out.strip().splitlines()[-1]
    assert "4 runs: " in final and all(
        part in final for part in ("1 completed", "2 failed", "1 diverged")
    ), out
    assert f"failed      {run_ids[3.1e-4]}: worker process killed by SIGKILL" in out
    assert f"failed      {run_ids[3.2e-4]}: timed out: still running 1 min after it started" in out
    assert f"diverged    {run_ids[1e10]}: non-finite" in out
    assert status_of(runs / run_ids[3e-4])["status"] == "completed"
    assert status_of(runs / run_ids[3.2e-4])["status"] == "failed"


@pytest.mark.parametrize(
    ("launcher", "message"),
    [
        ({"type": "slurm", "executor": "cloud"}, "launcher.executor: unknown Slurm executor"),
        ({"type": "local", "timeout_min": -1}, "launcher.timeout_min: must be a positive number"),
        ({"type": "slurm", "timeout_min": 0.5}, "launcher.timeout_min: must be an integer"),
    ],
)
def test_launcher_fault_options_are_validated(launcher: dict[str, Any], message: str) -> None:
    from samrl.config.launchers import parse_launcher
    from samrl.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_launcher(launcher)
