"""Ray launcher: one Ray task per run (`ray.init(address=...)`; a local instance without one).

Ray is the optional extra `samrl[ray]`. Tasks are never retried by Ray (a crashed worker is a
failed run, recorded like any other); the next sweep resumes or retries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from samrl.config.launchers import RayLauncher
from samrl.envvars import available_cores
from samrl.errors import SamrlError
from samrl.sweep.worker import (
    Job,
    Monitor,
    Outcome,
    failed_outcome,
    outcome_from_result,
    run_config_file,
)

POLL_S = 1.0


def _import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise SamrlError(
            "--launcher ray needs Ray: pip install 'samrl[ray]' (or pip install ray)"
        ) from None
    return ray


def run_ray(
    jobs: Sequence[Job],
    *,
    options: RayLauncher,
    monitor: Monitor,
    env: dict[str, str],
) -> list[Outcome]:
    """Run every job as a Ray task with `num_cpus`/`num_gpus` each; wait for all of them."""
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        address = options.address
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=available_cores(), include_dashboard=False, log_to_driver=False)
    num_cpus = options.num_cpus or 1
    task = ray.remote(num_cpus=num_cpus, num_gpus=options.num_gpus or 0, max_retries=0)(
        run_config_file
    )
    threads = max(1, int(num_cpus))
    waiting = {task.remote(str(j.config_file), threads, env): j for j in jobs}
    for job in jobs:
        monitor.started(job.run_id)
    outcomes: list[Outcome] = []
    try:
        while waiting:
            done, _ = ray.wait(list(waiting), num_returns=1, timeout=POLL_S)
            for ref in done:
                job = waiting.pop(ref)
                try:
                    outcome = outcome_from_result(job.run_id, ray.get(ref))
                except Exception as exc:  # worker crashed or was killed
                    outcome = failed_outcome(job.run_id, "Ray task", exc)
                outcomes.append(outcome)
                monitor.finished(outcome)
    except BaseException:
        for ref in waiting:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return outcomes
