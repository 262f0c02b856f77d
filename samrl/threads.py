"""torch's intra-op thread count for a training run: `train.threads` (a number or `auto`).

torch defaults to one intra-op thread per core. Its threads meet at every operation, so when
another process takes one of the cores the whole update waits for the descheduled thread:
measured on 2 shared cores (README "Threads", benchmarks/bench_threads.py) a second thread
makes an update up to 10x slower as soon as anything else runs, while one thread degrades only
by the share of the core it loses. `auto` therefore means: the thread count a launcher or the
user chose through OMP_NUM_THREADS (samrl's sweeps set it to cores // jobs, Slurm's to
--cpus-per-task), and 1 otherwise. A number is used as given (capped to the cores this process
may use).

torch.set_num_threads is process-wide state: `samrl train` sets it for the run and puts the
previous value back when the run ends (see `threads_for_run`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

AUTO = "auto"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a Slurm allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(value: int | str) -> int:
    """The number of intra-op threads `train.threads: value` means in this process."""
    if value == AUTO:
        launcher = os.environ.get("OMP_NUM_THREADS", "")
        value = int(launcher) if launcher.isdigit() and int(launcher) > 0 else 1
    return max(1, min(int(value), available_cores()))


@contextlib.contextmanager
def threads_for_run(value: int | str) -> Iterator[int]:
    """torch.set_num_threads(resolve_threads(value)) while a run trains; restored after."""
    previous = torch.get_num_threads()
    threads = resolve_threads(value)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)
