"""Slurm launcher: one job array through submitit, one array task per run.

Job states come from `squeue` (queued, running, gone), never from `sacct`: a cluster without
accounting answers sacct with an error, on which submitit warns at every poll and never sees a
cancelled task end. A task that ends without a result (cancelled, preempted, killed at its time
limit) is read from its run directory: its checkpoint is there, and the next sweep resumes it.

Each task gets `--requeue` and submitit's `--signal=USR2@<signal_delay_s>`; the training loop
checkpoints at the next step on SIGUSR2 (time limit ahead: the task requeues itself) or SIGTERM
(preemption, `scontrol requeue`, `scancel`: Slurm decides) and exits without a result, so a
requeued task continues where it stopped.

`executor: local` (or no `sbatch` on PATH with the default `auto`) runs the same jobs through
submitit's local executor, in waves of `array_parallelism`.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from samrl.config.launchers import SlurmLauncher
from samrl.errors import LauncherError
from samrl.rundir import RunDir, now
from samrl.status import FAILED_STATUSES, RunStatus
from samrl.sweep.worker import (
    Job,
    Monitor,
    Outcome,
    failed_outcome,
    last_line,
    outcome_from_result,
    run_config_file,
)

DEFAULT_TIMEOUT_MIN = 24 * 60
POLL_S = {"slurm": 2.0, "local": 0.5}
#: squeue states of a task that has not started (again) yet, and of one that runs.
QUEUED = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
RUNNING = frozenset(
    {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "RESIZING"}
)
#: A task gone from squeue this long (or ended) with no result file is over.
RESULT_GRACE_S = 10.0


def slurm_available() -> bool:
    return shutil.which("sbatch") is not None


def resolve_executor(options: SlurmLauncher) -> str:
    """'slurm' or 'local' from the launcher's `executor` (auto | slurm | local)."""
    wanted = options.executor or "auto"
    if wanted == "local":
        return "local"
    if slurm_available():
        return "slurm"
    if wanted == "slurm":
        raise LauncherError("launcher.executor is slurm but sbatch is not on PATH here")
    return "local"


def make_executor(folder: Path, options: SlurmLauncher, name: str, n_jobs: int) -> Any:
    import submitit

    cluster = resolve_executor(options)
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    params: dict[str, Any] = {
        "name": f"samrl-{name}",
        "timeout_min": options.timeout_min or DEFAULT_TIMEOUT_MIN,
        "cpus_per_task": options.cpus_per_task or 1,
        "gpus_per_node": options.gpus_per_node or 0,
        "mem_gb": options.mem_gb,
        "slurm_partition": options.partition,
        "slurm_array_parallelism": options.array_parallelism or n_jobs,
        "slurm_signal_delay_s": options.signal_delay_s,
    }
    if cluster == "slurm":
        # requeueable whatever the cluster's JobRequeue default is
        params["slurm_additional_parameters"] = {"requeue": True}
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def run_slurm(
    jobs: Sequence[Job],
    *,
    folder: Path,
    options: SlurmLauncher,
    name: str,
    n_jobs: int,
    monitor: Monitor,
    env: dict[str, str],
    echo: Any = print,
) -> list[Outcome]:
    """Submit `jobs` as one array (local fallback: waves) and wait for every outcome."""
    executor = make_executor(folder, options, name, n_jobs)
    cluster = executor.cluster
    threads = options.cpus_per_task or 1
    parallel = options.array_parallelism or n_jobs
    if cluster != "slurm":
        why = "executor: local" if options.executor == "local" else "sbatch not found"
        echo(
            f"samrl: no Slurm used ({why}); submitit's local executor runs the jobs on this "
            f"machine, {parallel} at a time"
        )
    wave = len(jobs) if cluster == "slurm" else parallel
    outcomes: list[Outcome] = []
    for start in range(0, len(jobs), max(1, wave)):
        chunk = list(jobs[start : start + wave])
        submitted = _submit(executor, chunk, threads, env, options)
        if cluster == "slurm":
            array_id = submitted[0].job_id.split("_")[0]
            echo(
                f"samrl: submitted Slurm job array {array_id} ({len(chunk)} tasks, {parallel} "
                f"at a time); per-run logs in {chunk[0].log_file.parent}"
            )
            outcomes.extend(_wait_slurm(dict(zip(submitted, chunk, strict=True)), monitor))
        else:
            waiting = dict(zip(submitted, chunk, strict=True))
            outcomes.extend(_wait_local(waiting, monitor, POLL_S["local"]))
    return outcomes


def _submit(
    executor: Any, chunk: list[Job], threads: int, env: dict[str, str], options: SlurmLauncher
) -> list[Any]:
    """map_array, with sbatch's refusal as one line (submitit prints sbatch's stderr itself;
    it is captured here and its last line reported)."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return list(
                executor.map_array(
                    run_config_file,
                    [str(j.config_file) for j in chunk],
                    [threads] * len(chunk),
                    [env] * len(chunk),
                    [str(j.log_file) for j in chunk],
                )
            )
    except Exception as exc:
        detail = last_line(str(exc)) or last_line(captured.getvalue()) or type(exc).__name__
        where = f" (partition {options.partition})" if options.partition else ""
        raise LauncherError(f"Slurm refused the job array{where}: {detail}") from None


# ---------------------------------------------------------------- waiting on Slurm


def squeue_states(job_ids: Sequence[str]) -> dict[str, str] | None:
    """Task id (`<array>_<index>` or `<job>`) -> Slurm state for the arrays of `job_ids`;
    None when squeue does not answer (the controller restarting): keep the last view."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T"]
    try:
        done = subprocess.run(
            [*command, "--jobs", ",".join(arrays)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        # squeue exits 1 when every listed job has been purged: then they are all gone
        return {} if "Invalid job id" in done.stderr else None
    states: dict[str, str] = {}
    for line in done.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        if task:
            states[task] = state.strip()
    return states


def _wait_slurm(waiting: dict[Any, Job], monitor: Monitor) -> list[Outcome]:
    """Poll squeue until every task has a result or has left the queue for good."""
    # sbatch has accepted every task, so each is in the queue now; a task the scheduler starts
    # before the first poll would otherwise never be reported as queued
    shown_running = {job.run_id: False for job in waiting.values()}  # else shown as queued
    for job in waiting.values():
        _queued(monitor)(job.run_id)
    ended_at: dict[Any, float] = {}  # handle -> when squeue first showed it ended or gone
    outcomes: list[Outcome] = []
    try:
        while waiting:
            states = squeue_states([h.job_id for h in waiting])
            for handle in list(waiting):
                job = waiting[handle]
                state = None if states is None else states.get(handle.job_id, "GONE")
                if handle.paths.result_pickle.exists():
                    outcome = _result_outcome(handle, job)
                elif state is None or state in QUEUED or state in RUNNING:
                    ended_at.pop(handle, None)
                    running = state in RUNNING
                    if state is not None and shown_running[job.run_id] != running:
                        shown_running[job.run_id] = running
                        (monitor.started if running else _queued(monitor))(job.run_id)
                    continue
                else:  # ended or gone, no result (yet: give the file system a moment)
                    first = ended_at.setdefault(handle, time.monotonic())
                    if time.monotonic() - first < RESULT_GRACE_S:
                        continue
                    outcome = _no_result_outcome(handle, job, state)
                waiting.pop(handle)
                if not shown_running[job.run_id]:
                    monitor.started(job.run_id)
                outcomes.append(outcome)
                monitor.finished(outcome)
            if waiting:
                time.sleep(POLL_S["slurm"])
    except BaseException:
        for handle in waiting:
            handle.cancel(check=False)
        raise
    return outcomes


def _queued(monitor: Monitor) -> Any:
    return getattr(monitor, "queued", lambda run_id: None)


def _result_outcome(handle: Any, job: Job) -> Outcome:
    try:
        return outcome_from_result(job.run_id, handle.result())
    except Exception as exc:  # the function raised inside the task: the run is recorded failed
        return failed_outcome(job.run_id, f"job {handle.job_id}", exc)


def _no_result_outcome(handle: Any, job: Job, state: str) -> Outcome:
    """A task that ended without returning: cancelled, preempted for good, time limit, node
    failure, killed. What survives is in its run directory; the next sweep resumes it."""
    where = "left the queue" if state == "GONE" else f"ended {state}"
    run = RunDir(job.run_dir)
    status = run.read_status()
    steps = status.get("steps_done", 0)
    if status["status"] == RunStatus.RUNNING:  # killed before it could record anything
        run.write_status(
            status=RunStatus.INTERRUPTED,
            ended_at=now(),
            error=f"Slurm job {handle.job_id} {where}",
        )
        status = run.read_status()
    if status["status"] not in (*FAILED_STATUSES, RunStatus.COMPLETED):  # resumable
        return Outcome(
            job.run_id,
            RunStatus.INTERRUPTED,
            f"Slurm job {handle.job_id} {where} at step {steps}; its checkpoint is kept and "
            f"the sweep resumes it when started again (log: {job.log_file})",
        )
    detail = status.get("error") or f"Slurm job {handle.job_id} {where} without a result"
    return Outcome(job.run_id, RunStatus(status["status"]), f"{detail} (log: {job.log_file})")


# ---------------------------------------------------------------- local executor


def _wait_local(waiting: dict[Any, Job], monitor: Monitor, poll_s: float) -> list[Outcome]:
    for job in waiting.values():
        monitor.started(job.run_id)
    outcomes: list[Outcome] = []
    try:
        while waiting:
            for handle in [h for h in waiting if h.done()]:
                job = waiting.pop(handle)
                outcome = _result_outcome(handle, job)
                outcomes.append(outcome)
                monitor.finished(outcome)
            if waiting:
                time.sleep(poll_s)
    except BaseException:
        for handle in waiting:
            handle.cancel(check=False)
        raise
    return outcomes
