"""`samrl sweep --launcher slurm` against a real Slurm cluster (scripts/slurm-cluster.sh starts a
one-node one; .ci/run does so where it can). Without a cluster every test here is skipped and
pytest's summary (-rs) says why.

Runs are tiny (a few dozen steps); what is slow is Slurm itself (a job starts in about a second).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import TINY_SWEEP_BASE, run_cli

import samrl.sweep.runner

pytestmark = pytest.mark.slow

TINY = TINY_SWEEP_BASE
TABLES = ("loss.csv", "sharpness.csv")


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "no Slurm here (sbatch not found); scripts/slurm-cluster.sh starts a cluster"
    try:
        done = subprocess.run(
            ["sinfo", "--noheader", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Slurm installed but sinfo does not answer ({exc})"
    states = done.stdout.split()
    if done.returncode != 0 or not any(s in ("idle", "mixed", "allocated") for s in states):
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no nodes"]
        return f"Slurm installed but no node is up ({detail[0]}); run scripts/slurm-cluster.sh"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    problem = _cluster_problem()
    if problem:
        pytest.skip(problem)


def sweep_file(
    tmp_path: Path, name: str, config: dict[str, Any] | None = None, **fields: Any
) -> Path:
    path = tmp_path / f"{name}.yaml"
    data = {
        "config": config or TINY,
        "out": str(tmp_path / "out"),
        "launcher": {"type": "slurm", "executor": "slurm", "timeout_min": 10},
        **fields,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def statuses(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((sweep_dir / "runs").glob("*/status.json"))
    }


def array_tasks(name: str) -> dict[str, tuple[str, str]]:
    """Task id -> (state, reason) of this sweep's Slurm jobs (job name samrl-<name>)."""
    done = subprocess.run(
        ["squeue", "--noheader", "--array", "--states=all", "--name", f"samrl-{name}",
         "--format=%i|%T|%r"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out: dict[str, tuple[str, str]] = {}
    for line in done.stdout.split():
        task, state, reason = line.split("|")
        out[task] = (state, reason)
    return out


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


_HELD_SINCE: dict[str, float] = {}
RELEASE_AFTER_S = 5.0


def release_requeued(name: str) -> None:
    """Slurm holds a requeued batch job for 2 minutes (BeginTime); a test has no time for
    that, so it lets such tasks start, as an admin could, once they have waited a few seconds.
    Released at once, a task can be allocated while its previous run's job credential is still
    being revoked, and slurmctld then kills it ("Killing non-startable batch job: Job
    credential revoked", seen once under load)."""
    now = time.monotonic()
    for task, (state, reason) in array_tasks(name).items():
        held = state == "PENDING" and reason == "BeginTime"
        if held and now - _HELD_SINCE.setdefault(task, now) >= RELEASE_AFTER_S:
            subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now"], check=False)
            del _HELD_SINCE[task]


def sweep_in_first_epoch(path: Path, name: str) -> tuple[subprocess.Popen[str], Path, str]:
    """A `samrl sweep` process on the one-run sweep file `path` (sweep `name`, written by
    sweep_file), once its run has written its first epoch: (the process, the run directory,
    its array task). The caller stops the process; it is killed here if that never comes."""
    sweep = subprocess.Popen(
        [sys.executable, "-m", "samrl", "sweep", str(path), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    runs = path.parent / "out" / name / "runs"
    try:
        loss = wait_for(lambda: next(runs.glob("*/loss.csv"), None), 120, "the first epoch")
        (task,) = array_tasks(name)
    except BaseException:
        sweep.kill()
        raise
    return sweep, loss.parent, task


def test_job_array_one_task_per_run_logs_parallelism_and_progress(
    cluster: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[tuple[str, str]] = []

    class Recording(samrl.sweep.runner.Progress):
        def queued(self, run_id: str) -> None:
            events.append(("queued", run_id))
            super().queued(run_id)

        def started(self, run_id: str) -> None:
            events.append(("running", run_id))
            super().started(run_id)

        def finished(self, outcome: Any) -> None:
            events.append((outcome.status, outcome.run_id))
            super().finished(outcome)

    monkeypatch.setattr(samrl.sweep.runner, "Progress", Recording)
    path = sweep_file(tmp_path, "arr", grid={"optim.rho": [0.0, 0.05, 0.1]})
    code, out, err = run_cli(["sweep", str(path), "--quiet", "--array-parallelism", "1"], capsys)
    sweep_dir = tmp_path / "out" / "arr"
    assert code == 0, out + err
    assert "3 runs: 3 completed" in out
    assert "sacct" not in out + err  # a cluster without accounting: no warnings at all
    # one array, one task per run, at most one at a time
    scripts = list((sweep_dir / "slurm").glob("*_submission.sh"))
    assert len(scripts) == 1
    assert "#SBATCH --array=0-2%1" in scripts[0].read_text()
    assert "#SBATCH --requeue" in scripts[0].read_text()
    runs = statuses(sweep_dir)
    assert [s["status"] for s in runs.values()] == ["completed"] * 3
    # per-run logs where the sweep says, with the task's own output in them
    for run_id in runs:
        log = (sweep_dir / "logs" / f"{run_id}.log").read_text()
        assert "samrl: worker starts" in log and "samrl: run completed at step 20" in log
    # every run is queued when sbatch accepts the array (even one the scheduler starts before
    # the first poll), then running as squeue says, then done; with a parallelism of 1 never two
    # running at once
    running: set[str] = set()
    most = 0
    for kind, run_id in events:
        if kind == "running":
            running.add(run_id)
            most = max(most, len(running))
        elif kind != "queued":
            running.discard(run_id)
    assert most == 1
    assert {r for k, r in events if k == "queued"} == set(runs)
    for run_id in runs:
        order = [k for k, r in events if r == run_id]
        assert order[0] == "queued" and order[-2:] == ["running", "completed"], order


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--partition", "nosuchpartition"], "Invalid partition name specified"),
        (["--mem-gb", "100000"], "Requested node configuration is not available"),
    ],
)
def test_submission_refused_is_one_line_and_exit_2(
    cluster: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    expected: str,
) -> None:
    path = sweep_file(tmp_path, "bad")
    code, _, err = run_cli(["sweep", str(path), "--quiet", *flags], capsys)
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("samrl: launcher error: Slurm refused the job array") and expected in err


def _reference(tmp_path: Path, config: dict[str, Any], capsys: Any) -> dict[str, bytes]:
    """The same run, uninterrupted, by `samrl train` in another output directory."""
    ref = {**config, "output": {"dir": str(tmp_path / "reference")}}
    path = tmp_path / "reference.yaml"
    path.write_text(yaml.safe_dump(ref))
    code, _, err = run_cli(["train", "--config", str(path), "--quiet"], capsys)
    assert code == 0, err
    run_dir = next((tmp_path / "reference").glob("*/*/status.json")).parent
    return {n: (run_dir / n).read_bytes() for n in TABLES}


LONGER = {**TINY, "train": {**TINY["train"], "n_steps": 600, "n_steps_per_epoch": 100}}


@pytest.mark.parametrize("how", ["scontrol requeue (preemption)", "SIGUSR2 (time limit ahead)"])
def test_preempted_or_timed_out_run_checkpoints_and_continues_after_requeue(
    cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    # unique: squeue keeps earlier sessions' finished jobs of the same name for minutes
    name = ("pre" if how.startswith("scontrol") else "usr") + uuid.uuid4().hex[:8]
    expected = _reference(tmp_path, LONGER, capsys)
    path = sweep_file(tmp_path, name, config=LONGER)
    sweep, run_dir, task = sweep_in_first_epoch(path, name)
    sweep_dir = tmp_path / "out" / name
    try:
        if how.startswith("scontrol"):
            subprocess.run(["scontrol", "requeue", task], check=True)
        else:
            subprocess.run(["scancel", "--signal=USR2", task], check=True)
        wait_for(lambda: (release_requeued(name), sweep.poll() is not None)[1], 240, "the sweep")
        out = sweep.stdout.read() if sweep.stdout else ""
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, out
    assert "1 runs: 1 completed" in out
    log = next((sweep_dir / "logs").glob("*.log")).read_text()
    signal_name = "SIGTERM" if how.startswith("scontrol") else "SIGUSR2"
    assert f"interrupted by {signal_name} at step" in log
    if signal_name == "SIGUSR2":
        assert "samrl: requeued Slurm job" in log
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "completed" and status["steps_done"] == 600
    assert {n: (run_dir / n).read_bytes() for n in TABLES} == expected
    assert pd.read_csv(run_dir / "loss.csv")["epoch"].tolist() == [1, 2, 3, 4, 5, 6]


def test_cancelled_run_resumes_from_its_checkpoint_when_the_sweep_runs_again(
    cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _reference(tmp_path, LONGER, capsys)
    name = "can" + uuid.uuid4().hex[:8]
    path = sweep_file(tmp_path, name, config=LONGER)
    sweep, run_dir, task = sweep_in_first_epoch(path, name)
    sweep_dir = tmp_path / "out" / name
    try:
        subprocess.run(["scancel", task], check=True)
        out, _ = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1, out
    assert "1 runs: 1 interrupted" in out and "resumes it when started again" in out
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted" and 0 < status["steps_done"] < 600
    stopped_at = status["steps_done"]
    code, out, err = run_cli(["sweep", str(path), "--quiet"], capsys)
    assert code == 0, out + err
    assert "1 runs, 1 to run" in out and "1 runs: 1 completed" in out
    log = next((sweep_dir / "logs").glob("*.log")).read_text()
    assert f"interrupted by SIGTERM at step {stopped_at}" in log
    assert {n: (run_dir / n).read_bytes() for n in TABLES} == expected
