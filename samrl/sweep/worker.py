"""What every launcher runs for one run, and what it reports back: one contract.

`run_config_file` is a top-level, picklable function: it trains one run from its config file
with resume, so a re-launched run continues from its checkpoint and a completed one is
skipped. It returns a small dict and never raises for a failing run; `outcome_from_result`
turns that dict into the sweep's Outcome. Slurm (submitit) and Ray call it and get the dict
back through their frameworks; the local launcher runs it in a child process
(`python -m samrl.sweep.worker CONFIG --result FILE`) that writes the dict to FILE.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Protocol

import samrl
from samrl.config import load_config
from samrl.errors import SamrlError
from samrl.quiet import quiet_d3rlpy
from samrl.rundir import atomic_write
from samrl.status import OUTCOME_STATUSES, RunStatus

#: Environment variables a remote worker needs to see the same data as the driver.
FORWARDED_ENV = ("SAMRL_DATA_DIR", "D4RL_DATASET_DIR", "MINARI_DATASETS_PATH")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclasses.dataclass(frozen=True)
class Job:
    """One run to launch: its config file, run directory and log file."""

    run_id: str
    config_file: Path
    run_dir: Path
    log_file: Path


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a launched run ended (one of OUTCOME_STATUSES), and why."""

    run_id: str
    status: RunStatus
    message: str = ""


class Monitor(Protocol):
    """What launchers tell the sweep's progress display."""

    def started(self, run_id: str) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...


def forwarded_env() -> dict[str, str]:
    """The environment Slurm and Ray workers get: the data caches, and SAMRL_OFFLINE=1 because
    the driver has already downloaded every dataset (runner.prepare_datasets), so a compute
    node that cannot see one fails in one line instead of downloading it."""
    return {**{k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}, "SAMRL_OFFLINE": "1"}


def thread_env(threads: int) -> dict[str, str]:
    return dict.fromkeys(THREAD_ENV, str(threads))


def run_config_file(
    path: str,
    threads: int | None = None,
    env: dict[str, str] | None = None,
    log: str | None = None,
) -> dict[str, Any]:
    """Train the run whose config file is `path` (resuming it if it was interrupted), its
    output appended to `log` when given.

    Returns {"status": completed | diverged | failed | interrupted, "message", "steps_done"}.
    Inside a Slurm task an interrupted run returns nothing: see `_leave_to_slurm`.
    """
    if log:
        _redirect_output(Path(log))
        print(f"samrl: worker starts {path} ({_where()})", flush=True)
    os.environ.update(env or {})
    samrl.register()  # as the CLI: before d3rlpy is imported (gym's notice stays out of logs)
    if threads:
        import torch

        os.environ.update(thread_env(threads))
        torch.set_num_threads(threads)
    from samrl.run.train import run_training  # lazy: torch, d3rlpy, gymnasium

    quiet_d3rlpy()
    try:
        result = run_training(load_config(path), resume=True, progress=False)
    except SamrlError as exc:
        return {"status": RunStatus.FAILED, "message": f"{exc.kind}: {exc}", "steps_done": 0}
    except Exception as exc:  # a crash before training started; the sweep goes on
        return {
            "status": RunStatus.FAILED,
            "message": f"{type(exc).__name__}: {exc}",
            "steps_done": 0,
        }
    if result.status == RunStatus.INTERRUPTED and os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
        _leave_to_slurm(result.message, result.signal)
    status = RunStatus.COMPLETED if result.status == RunStatus.SKIPPED else result.status
    print(f"samrl: run {status} at step {result.steps_done} {result.message}".rstrip(), flush=True)
    return {"status": status, "message": result.message, "steps_done": result.steps_done}


def outcome_from_result(run_id: str, result: Any) -> Outcome:
    """An Outcome from run_config_file's dict (or anything a remote framework returned)."""
    if not isinstance(result, dict) or result.get("status") not in OUTCOME_STATUSES:
        return Outcome(run_id, RunStatus.FAILED, f"unexpected worker result {result!r}")
    return Outcome(run_id, RunStatus(result["status"]), str(result.get("message") or ""))


def failed_outcome(run_id: str, what: str, exc: BaseException) -> Outcome:
    """A failed Outcome for a task the framework reports crashed: `what` (the Ray task, the
    Slurm job) failed, with the last line of the exception."""
    detail = last_line(str(exc)) or type(exc).__name__
    return Outcome(run_id, RunStatus.FAILED, f"{what} failed: {detail}")


def result_file(job: Job) -> Path:
    """Where a local worker process writes run_config_file's dict (beside its log)."""
    return job.log_file.with_name(f"{job.run_id}.result.json")


def read_result(path: Path) -> dict[str, Any] | None:
    """A local worker's result dict, or None when the process wrote none (it crashed)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def main(argv: list[str] | None = None) -> int:
    """`python -m samrl.sweep.worker CONFIG --result FILE`: exit 0 when the run completed, 1
    otherwise (the result file says how). The local launcher sets the thread count in the
    environment (OMP_NUM_THREADS)."""
    parser = argparse.ArgumentParser(prog="python -m samrl.sweep.worker")
    parser.add_argument("config")
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    result = run_config_file(args.config)
    atomic_write(Path(args.result), json.dumps(result) + "\n")
    if result["status"] != RunStatus.COMPLETED:
        print(f"samrl: run {result['status']}: {result['message']}", flush=True)
    return 0 if result["status"] == RunStatus.COMPLETED else 1


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _redirect_output(log: Path) -> None:
    """This process's stdout and stderr (file descriptors, so child output too) append to `log`:
    each run's log lies where the sweep says, whichever launcher ran it."""
    import sys

    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _where() -> str:
    import socket

    where = f"pid {os.getpid()} on {socket.gethostname()}"
    if "SLURM_JOB_ID" in os.environ:
        where += (
            f", Slurm job {os.environ['SLURM_JOB_ID']}, "
            f"restart {os.environ.get('SLURM_RESTART_COUNT', '0')}"
        )
    return where


def _leave_to_slurm(message: str, signal_name: str) -> None:
    """The run stopped on a signal and checkpointed. SIGUSR2 is Slurm's warning ahead of the
    time limit: requeue this task, which then resumes. SIGTERM came from Slurm (preemption,
    requeue, scancel), which decides what happens next. Either way exit without a result, so
    the sweep does not take this attempt for the task's end (submitit writes no result file
    for SystemExit)."""
    import subprocess
    import sys

    import submitit

    if signal_name == "SIGUSR2":
        job_id = submitit.JobEnvironment().job_id
        subprocess.run(["scontrol", "requeue", job_id], check=False, timeout=60)
        print(f"samrl: requeued Slurm job {job_id} ahead of its time limit", flush=True)
    print(f"samrl: {message}", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    import sys

    sys.exit(main())
