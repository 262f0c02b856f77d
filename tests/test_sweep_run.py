"""Sweeps end to end on tiny runs: fault isolation, kill and resume, submitit and Ray launchers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import TINY_SWEEP_BASE, run_cli

from samrl.status import RunStatus
from samrl.sweep.local import run_local
from samrl.sweep.worker import Job, Outcome, failed_outcome

TINY = TINY_SWEEP_BASE


def sweep_file(tmp_path: Path, name: str, **fields: Any) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"config": TINY, "out": str(tmp_path / "out"), **fields}))
    return path


def statuses(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((sweep_dir / "runs").glob("*/status.json"))
    }


def epochs(run_dir: Path) -> list[int]:
    return pd.read_csv(run_dir / "loss.csv")["epoch"].tolist()


def test_failing_run_is_isolated_reported_and_retried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real failure: a learning rate that validation accepts but that makes training diverge.
    path = sweep_file(
        tmp_path,
        "iso",
        grid={"algo.params.critic_learning_rate": [3e-4, 1e10]},
        seeds=[0],
        jobs=2,
    )
    code, out, err = run_cli(["sweep", str(path), "--quiet"], capsys)
    sweep_dir = tmp_path / "out" / "iso"
    assert code == 1
    assert "2 runs: 1 completed, 1 diverged; summary.csv and aggregate.csv in" in out
    assert (
        "diverged    td3_plus_bc_pendulum-random_sam-rho0.05_critic_learning_rate1e10_s0: " in err
    )
    assert "non-finite" in err
    states = statuses(sweep_dir)
    bad = "td3_plus_bc_pendulum-random_sam-rho0.05_critic_learning_rate1e10_s0"
    good = "td3_plus_bc_pendulum-random_sam-rho0.05_critic_learning_rate0.0003_s0"
    assert states[bad]["status"] == "diverged" and states[good]["status"] == "completed"
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert sorted(summary["status"]) == ["completed", "diverged"]
    aggregate = pd.read_csv(sweep_dir / "aggregate.csv")
    assert sorted(aggregate["n_diverged"]) == [0, 1]
    spec = json.loads((sweep_dir / "sweep.json").read_text())
    assert spec["grid"] == {"algo.params.critic_learning_rate": [3e-4, 1e10]}
    assert [r["seed"] for r in spec["runs"]] == [0, 0]

    # Again: nothing is retrained; the diverged runs are reported, and the exit status stays 1.
    mtimes = {r: (sweep_dir / "runs" / r / "status.json").stat().st_mtime_ns for r in states}
    code, out, err = run_cli(["sweep", str(path), "--quiet"], capsys)
    assert code == 1
    assert "2 runs, 0 to run; 1 already completed, 1 diverged earlier" in out
    assert f"run {bad} diverged earlier (--retry-failed runs it again)" in out
    assert mtimes == {
        r: (sweep_dir / "runs" / r / "status.json").stat().st_mtime_ns for r in states
    }

    code, out, _ = run_cli(["sweep", str(path), "--quiet", "--retry-failed"], capsys)
    assert code == 1
    assert "2 runs, 1 to run; 1 already completed" in out
    after = {r: (sweep_dir / "runs" / r / "status.json").stat().st_mtime_ns for r in states}
    assert after[good] == mtimes[good] and after[bad] != mtimes[bad]


def test_only_runs_the_selected_arm_and_a_later_sweep_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sweep_file(tmp_path, "arms", grid={"optim.name": ["adam", "sam"]}, seeds=[0, 1])
    code, out, err = run_cli(["sweep", str(path), "--quiet", "--only", "optim.name=adam"], capsys)
    sweep_dir = tmp_path / "out" / "arms"
    assert code == 0, err
    assert "4 runs, 2 to run; 2 left for a run without --only" in out
    assert err == ""  # the runs left out are not reported as failures
    assert {r: s["status"] for r, s in statuses(sweep_dir).items()} == {
        "td3_plus_bc_pendulum-random_adam_s0": "completed",
        "td3_plus_bc_pendulum-random_adam_s1": "completed",
    }
    summary = pd.read_csv(sweep_dir / "summary.csv").set_index("run_id")["status"]
    assert summary.to_dict() == {
        "td3_plus_bc_pendulum-random_adam_s0": "completed",
        "td3_plus_bc_pendulum-random_adam_s1": "completed",
        "td3_plus_bc_pendulum-random_sam-rho0.05_s0": "pending",
        "td3_plus_bc_pendulum-random_sam-rho0.05_s1": "pending",
    }
    # the same sweep without --only: the directory is the same sweep, and only the rest runs
    code, out, err = run_cli(["sweep", str(path), "--quiet"], capsys)
    assert code == 0, err
    assert "4 runs, 2 to run; 2 already completed" in out
    assert set(pd.read_csv(sweep_dir / "summary.csv")["status"]) == {"completed"}
    assert all(s["status"] == "completed" for s in statuses(sweep_dir).values())


def test_crashing_process_does_not_stop_the_others(tmp_path: Path) -> None:
    def job(run_id: str) -> Job:
        return Job(run_id, tmp_path / run_id, tmp_path / run_id, tmp_path / f"{run_id}.log")

    commands = {
        "crash": [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
        "ok": [sys.executable, "-c", "print('fine')"],
        "error": [sys.executable, "-c", "import sys; sys.exit('samrl: config error: x: bad')"],
    }

    class Monitor:
        def __init__(self) -> None:
            self.events: list[str] = []

        def started(self, run_id: str) -> None:
            self.events.append(f"start {run_id}")

        def finished(self, outcome: Outcome) -> None:
            self.events.append(f"end {outcome.run_id}")

    monitor = Monitor()
    outcomes = run_local(
        [job("crash"), job("ok"), job("error")],
        n_jobs=2,
        monitor=monitor,
        command=lambda job: commands[job.config_file.name],
    )
    by_id = {o.run_id: o for o in outcomes}
    assert by_id["ok"].status == "completed"
    assert by_id["crash"].status == "failed" and "SIGSEGV" in by_id["crash"].message
    assert by_id["error"].status == "failed"
    assert by_id["error"].message.startswith("samrl: config error: x: bad (log: ")
    assert sorted(monitor.events) == sorted(
        [f"{e} {r}" for r in ("crash", "ok", "error") for e in ("start", "end")]
    )


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and prctl")
def test_killed_sweep_resumes_without_losing_or_repeating_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sweep_file(tmp_path, "kill", seeds=[0, 1, 2], jobs=1)
    sweep_dir = tmp_path / "out" / "kill"
    process = subprocess.Popen(
        [sys.executable, "-m", "samrl", "sweep", str(path), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = None
    deadline = time.monotonic() + 240
    while first is None and time.monotonic() < deadline and process.poll() is None:
        done = [r for r, s in statuses(sweep_dir).items() if s["status"] == "completed"]
        first = done[0] if done else None
        time.sleep(0.05)
    assert first is not None, "no run completed"
    process.kill()  # the harshest stop: no cleanup in the sweep process at all
    process.wait()
    finished = {r for r, s in statuses(sweep_dir).items() if s["status"] == "completed"}
    assert len(finished) < 3, "the sweep finished before it could be killed"
    # Its training child dies with it (PR_SET_PDEATHSIG), so no run goes on unobserved.
    deadline = time.monotonic() + 30
    while _processes_mentioning(str(sweep_dir / "configs")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_mentioning(str(sweep_dir / "configs"))

    first_dir = sweep_dir / "runs" / first
    before = {f: (first_dir / f).stat().st_mtime_ns for f in ("status.json", "loss.csv")}
    code, out, _ = run_cli(["sweep", str(path), "--quiet"], capsys)
    assert code == 0, out
    assert f"{len(finished)} already completed" in out
    assert "3 runs: 3 completed" in out
    final = statuses(sweep_dir)
    assert len(final) == 3 and all(s["status"] == "completed" for s in final.values())
    assert all(s["steps_done"] == 20 for s in final.values())
    for run_id in final:
        assert epochs(sweep_dir / "runs" / run_id) == [1, 2]  # each epoch exactly once
    assert before == {f: (first_dir / f).stat().st_mtime_ns for f in before}  # not retrained
    assert len(pd.read_csv(sweep_dir / "summary.csv")) == 3


@pytest.mark.slow
def test_submitit_local_executor_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sweep_file(
        tmp_path,
        "slurm",
        grid={"optim.rho": [0.0, 0.1]},
        launcher={"type": "slurm", "executor": "local"},
    )
    argv = ["sweep", str(path), "--quiet", "--array-parallelism", "2", "--timeout-min", "10"]
    code, out, _ = run_cli(argv, capsys)
    sweep_dir = tmp_path / "out" / "slurm"
    assert code == 0, out
    assert "no Slurm used (executor: local)" in out and "2 runs: 2 completed" in out
    assert any((sweep_dir / "slurm").iterdir())  # submitit's job folder
    assert [s["status"] for s in statuses(sweep_dir).values()] == ["completed"] * 2
    assert len(pd.read_csv(sweep_dir / "aggregate.csv")) == 2
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "2 runs, 0 to run; 2 already completed" in out


@pytest.mark.slow
def test_ray_local_instance_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ray = pytest.importorskip("ray")
    path = sweep_file(tmp_path, "ray", grid={"optim.rho": [0.0, 0.1]})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        argv = ["sweep", str(path), "--quiet", "--launcher", "ray", "--num-cpus", "1"]
        code, out, _ = run_cli(argv, capsys)
    finally:
        ray.shutdown()
    sweep_dir = tmp_path / "out" / "ray"
    assert code == 0, out
    assert "2 runs: 2 completed" in out
    assert [s["status"] for s in statuses(sweep_dir).values()] == ["completed"] * 2
    assert len(pd.read_csv(sweep_dir / "summary.csv")) == 2


def test_a_task_the_framework_reports_crashed_is_one_failed_line() -> None:
    """Slurm and Ray say the same of a crashed task: what failed, and the exception's last line
    (its type where it has no message)."""
    crash = RuntimeError("Traceback (most recent call last):\n  ...\nOSError: disk full\n")
    assert failed_outcome("r1", "Ray task", crash) == Outcome(
        "r1", RunStatus.FAILED, "Ray task failed: OSError: disk full"
    )
    assert failed_outcome("r2", "job 17", KeyError()).message == "job 17 failed: KeyError"
