"""Slurm launcher: one job array through submitit, one array task per run.

Where no Slurm is installed (no `sbatch`), submitit's local executor runs the same jobs as
processes on this machine, in waves of `array_parallelism`; the tests use that.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from samrl.sweep.worker import (
    Job,
    Monitor,
    Outcome,
    last_line,
    outcome_from_result,
    run_config_file,
)

DEFAULT_TIMEOUT_MIN = 24 * 60
POLL_S = {"slurm": 10.0, "local": 0.5}


def slurm_available() -> bool:
    return shutil.which("sbatch") is not None


def make_executor(folder: Path, options: dict[str, Any], name: str, n_jobs: int) -> Any:
    import submitit

    cluster = "slurm" if slurm_available() else "local"
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    params: dict[str, Any] = {
        "name": f"samrl-{name}",
        "timeout_min": options.get("timeout_min") or DEFAULT_TIMEOUT_MIN,
        "cpus_per_task": options.get("cpus_per_task") or 1,
        "gpus_per_node": options.get("gpus_per_node") or 0,
        "mem_gb": options.get("mem_gb"),
        "slurm_partition": options.get("partition"),
        "slurm_array_parallelism": options.get("array_parallelism") or n_jobs,
    }
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def run_slurm(
    jobs: Sequence[Job],
    *,
    folder: Path,
    options: dict[str, Any],
    name: str,
    n_jobs: int,
    monitor: Monitor,
    env: dict[str, str],
    echo: Any = print,
) -> list[Outcome]:
    """Submit `jobs` as one array (local fallback: waves) and wait for every outcome."""
    executor = make_executor(folder, options, name, n_jobs)
    cluster = executor.cluster
    threads = options.get("cpus_per_task") or 1
    if cluster != "slurm":
        echo(
            "samrl: no Slurm here (sbatch not found); submitit's local executor runs the "
            f"jobs on this machine, {options.get('array_parallelism') or n_jobs} at a time"
        )
    wave = len(jobs) if cluster == "slurm" else (options.get("array_parallelism") or n_jobs)
    outcomes: list[Outcome] = []
    for start in range(0, len(jobs), max(1, wave)):
        chunk = list(jobs[start : start + wave])
        submitted = executor.map_array(
            run_config_file,
            [str(j.config_file) for j in chunk],
            [threads] * len(chunk),
            [env] * len(chunk),
        )
        if cluster == "slurm" and submitted:
            echo(f"samrl: submitted Slurm job array {submitted[0].job_id.split('_')[0]}")
        outcomes.extend(_wait(dict(zip(submitted, chunk, strict=True)), monitor, POLL_S[cluster]))
    return outcomes


def _wait(waiting: dict[Any, Job], monitor: Monitor, poll_s: float) -> list[Outcome]:
    for job in waiting.values():
        monitor.started(job.run_id)
    outcomes: list[Outcome] = []
    try:
        while waiting:
            for handle in [h for h in waiting if h.done()]:
                job = waiting.pop(handle)
                try:
                    outcome = outcome_from_result(job.run_id, handle.result())
                except Exception as exc:  # the task died: timeout, node failure, segfault
                    detail = last_line(str(exc)) or type(exc).__name__
                    outcome = Outcome(job.run_id, "failed", f"job {handle.job_id} failed: {detail}")
                outcomes.append(outcome)
                monitor.finished(outcome)
            if waiting:
                time.sleep(poll_s)
    except BaseException:
        for handle in waiting:
            handle.cancel(check=False)
        raise
    return outcomes
