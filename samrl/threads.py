"""torch's intra-op thread count for a training run: `train.threads` (a number or `auto`).

torch defaults to one intra-op thread per core. Its threads wait for each other at every
operation, so when another process takes one of the cores the whole update waits for the
descheduled thread: measured on 2 cores (README, benchmarks/bench_threads.py), small networks
gain nothing from a second thread when idle and lose several-fold when anything else runs.
`auto` therefore uses one thread. torch.set_num_threads is process-wide state: samrl sets it
once per run process (the CLI, or a sweep's worker process), never inside the library API.
"""

from __future__ import annotations

import os

AUTO = "auto"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a Slurm allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(value: int | str) -> int:
    """`auto` -> 1; a number n >= 1 -> n (capped to the available cores)."""
    if value == AUTO:
        return 1
    return max(1, min(int(value), available_cores()))
