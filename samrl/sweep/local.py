"""Local launcher: N runs at once, each in its own worker process
(`python -m samrl.sweep.worker`: the same `run_config_file` Slurm and Ray call).

A crash (even a segfault) ends one process, never the sweep. Each child gets
max(1, cores // N) threads so N runs do not oversubscribe the machine, its own session (a
terminal Ctrl-C reaches the sweep, which interrupts the children cleanly), and on Linux dies
with the sweep process if that is killed outright.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from samrl.envvars import available_cores, offline_env
from samrl.rundir import RunDir, now
from samrl.status import FAILED_STATUSES, RunStatus
from samrl.sweep.worker import (
    Job,
    Monitor,
    Outcome,
    last_line,
    outcome_from_result,
    read_result,
    result_file,
    thread_env,
)

POLL_S = 0.2
#: Seconds interrupted children get to record their state before they are killed.
GRACE_S = 15.0


def threads_per_job(n_jobs: int, cores: int | None = None) -> int:
    return max(1, (cores or available_cores()) // n_jobs)


def worker_command(job: Job) -> list[str]:
    """The child process of one run: `run_config_file` writing its dict to the result file."""
    return [
        sys.executable,
        "-m",
        "samrl.sweep.worker",
        str(job.config_file),
        "--result",
        str(result_file(job)),
    ]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the sweep process dies (Linux prctl)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def outcome_of(job: Job, returncode: int) -> Outcome:
    """How a finished worker process ended: its result dict (the launchers' one contract);
    without one (the process crashed or was killed) its exit status, status.json and log."""
    result = read_result(result_file(job))
    if result is not None:
        return outcome_from_result(job.run_id, result)
    run = RunDir(job.run_dir)
    status = run.read_status()
    state = status["status"]
    if returncode == 0:
        return Outcome(job.run_id, RunStatus.COMPLETED)
    if returncode < 0:
        name = signal.Signals(-returncode).name
        message = f"worker process killed by {name} (log: {job.log_file})"
        if state == RunStatus.RUNNING:
            run.write_status(status=RunStatus.FAILED, ended_at=now(), error=message)
        return Outcome(job.run_id, RunStatus.FAILED, message)
    if state == RunStatus.INTERRUPTED:  # it stopped on a signal and checkpointed: resumable
        return Outcome(job.run_id, RunStatus.INTERRUPTED, str(status.get("error") or state))
    if returncode == 1 and state in FAILED_STATUSES:
        return Outcome(job.run_id, RunStatus(state), str(status.get("error") or ""))
    text = job.log_file.read_text(errors="replace") if job.log_file.exists() else ""
    detail = last_line(text) or f"exit status {returncode}"
    return Outcome(job.run_id, RunStatus.FAILED, f"{detail} (log: {job.log_file})")


def run_local(
    jobs: Sequence[Job],
    *,
    n_jobs: int,
    monitor: Monitor,
    command: Callable[[Job], list[str]] = worker_command,
    timeout_s: float | None = None,
) -> list[Outcome]:
    """Run `jobs`, at most `n_jobs` at a time; returns their outcomes in completion order.

    A run still going `timeout_s` after it started (hung, or far slower than planned) gets
    SIGTERM (it checkpoints and stops), SIGKILL after a grace period if it does not react, and
    is recorded failed; the others go on.

    On KeyboardInterrupt the running children get SIGINT (samrl train marks them
    interrupted, so the next sweep resumes them), then SIGKILL after a grace period.
    """
    env = {**os.environ, **thread_env(threads_per_job(n_jobs)), **offline_env()}
    pending = list(jobs)
    running: dict[subprocess.Popen[bytes], Job] = {}
    started: dict[subprocess.Popen[bytes], float] = {}
    outcomes: list[Outcome] = []
    try:
        while pending or running:
            while pending and len(running) < n_jobs:
                job = pending.pop(0)
                process = _start(job, command(job), env)
                running[process] = job
                started[process] = time.monotonic()
                monitor.started(job.run_id)
            time.sleep(POLL_S)
            late = [
                p
                for p in running
                if timeout_s is not None and time.monotonic() - started[p] > timeout_s
            ]
            for process in late:
                job = running.pop(process)
                stop([process], signal.SIGTERM)
                outcome = timed_out(job, timeout_s or 0.0)
                outcomes.append(outcome)
                monitor.finished(outcome)
            for process in [p for p in running if p.poll() is not None]:
                job = running.pop(process)
                outcome = outcome_of(job, process.returncode)
                outcomes.append(outcome)
                monitor.finished(outcome)
    except BaseException:
        stop(list(running))
        raise
    return outcomes


def _start(job: Job, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """One run's worker in a session of its own (so a stop reaches its children), its output
    appended to the run's log; a result file of an earlier attempt is removed first."""
    job.log_file.parent.mkdir(parents=True, exist_ok=True)
    result_file(job).unlink(missing_ok=True)
    with job.log_file.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


def timed_out(job: Job, timeout_s: float) -> Outcome:
    """Record a run stopped at the per-run timeout as failed (a run that hung once would hang
    again on resume; --retry-failed starts it afresh)."""
    message = (
        f"timed out: still running {timeout_s / 60:g} min after it started; stopped "
        f"(log: {job.log_file})"
    )
    if job.run_dir.is_dir():
        RunDir(job.run_dir).write_status(status=RunStatus.FAILED, ended_at=now(), error=message)
    return Outcome(job.run_id, RunStatus.FAILED, message)


def stop(processes: list[subprocess.Popen[bytes]], how: int = signal.SIGINT) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(how)
    deadline = time.monotonic() + GRACE_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
