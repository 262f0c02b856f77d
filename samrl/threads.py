"""torch's intra-op thread count for a training run: `train.threads` (auto, adaptive or N).

torch defaults to one intra-op thread per core. Its threads meet at every operation, so when
another process takes one of the cores the whole update waits for the descheduled thread:
measured on 2 shared cores (README "Threads", benchmarks/bench_threads.py) a second thread
makes an update up to 30x slower as soon as anything else runs, while one thread degrades only
by the share of the core it loses.

- `auto` (the default): the count a launcher chose in OMP_NUM_THREADS (samrl's sweeps set
  cores // jobs, Slurm --cpus-per-task), else 1. Fixed for the whole run.
- `adaptive`: `AdaptiveThreads` times blocks of steps with 1 thread and with the launcher's
  count (else every core), keeps the faster, and measures again every so often and as soon as
  steps get markedly slower (another job started). Fastest on a workstation whose load changes,
  but not the default, because the thread count can change the last bits of a result: torch
  splits some reductions between threads (a decision transformer's update differs in the last
  bits between 1 and 2 threads; the MLP algorithms at the sizes tests/test_threads.py uses do
  not). With `auto` or N, a run's numbers depend only on its config, seed and machine.
- N: N threads (capped to the cores this process may use).

torch.set_num_threads is process-wide state: `samrl train` sets it for the run only and puts
the previous value back when the run ends (`threads_for_run`); `AdaptiveThreads` changes it only
between training steps, from the training thread.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator

import torch

AUTO = "auto"
ADAPTIVE = "adaptive"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a Slurm allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(value: int | str) -> int:
    """The thread count `train.threads: value` means in this process: for `auto` the count a
    launcher set in OMP_NUM_THREADS, else 1; for `adaptive` its largest candidate, the
    launcher's count, else every core; a number as given. Capped to the available cores."""
    if value in (AUTO, ADAPTIVE):
        launcher = os.environ.get("OMP_NUM_THREADS", "")
        if launcher.isdigit() and int(launcher) > 0:
            value = int(launcher)
        else:
            value = 1 if value == AUTO else available_cores()
    return max(1, min(int(value), available_cores()))


class AdaptiveThreads:
    """Chooses, while a run trains, between 1 thread and `most` threads by timing both.

    A trial runs blocks of `block` steps in the order 1, most, 1, most and keeps the candidate
    whose blocks took less time per step (each block's median step, so an occasional costly
    step, a probe or periodic SAM step, does not decide). A block is cut short once it has
    taken 1.5x the time the other candidate needed for a whole block: a collapsing setting
    costs a few steps, not a block. The winner then runs until `recheck_s` seconds have passed
    (doubled, up to `max_recheck_s`, each time the same candidate wins by more than 2x) or
    until its steps take 1.5x longer than in the trial (the machine got busier): then a new
    trial. `step_done()` is called after every training step; it is the only place the
    process-wide thread count changes.
    """

    def __init__(
        self,
        most: int,
        *,
        block: int = 6,
        recheck_s: float = 30.0,
        max_recheck_s: float = 480.0,
        clock: Callable[[], float] = time.perf_counter,
        set_threads: Callable[[int], None] = torch.set_num_threads,
    ):
        self.candidates = [1, most] if most > 1 else [1]
        self.block = block
        self.base_recheck_s = self.recheck_s = recheck_s
        self.max_recheck_s = max_recheck_s
        self._clock = clock
        self._set = set_threads
        self.chosen = 1
        self.trials = 0  # trials run so far (reported by tests and benchmarks)
        self._schedule: list[int] = []  # candidates of the trial blocks still to run
        self._blocks: dict[int, list[float]] = {}  # this trial: median step of each block
        self._block_steps: list[float] = []
        self._last = clock()
        self._warm = False  # the first step (allocations) is never timed
        self._running_since = self._last
        self._recent: deque[float] = deque(maxlen=block)  # the chosen count's latest steps
        self._expected = float("inf")  # the chosen setting's time per step in its trial
        if len(self.candidates) > 1:
            self._start_trial()
        else:
            self._set(1)

    def restart_clock(self) -> None:
        """Called when steps resume after other work (evaluation, a checkpoint): the first step
        after it is not timed."""
        self._last = self._clock()
        self._warm = False

    @property
    def threads(self) -> int:
        """The thread count the next step runs with."""
        return self._schedule[0] if self._schedule else self.chosen

    def step_done(self) -> None:
        now = self._clock()
        elapsed, self._last = now - self._last, now
        if not self._warm:
            self._warm = True
            return
        if len(self.candidates) == 1:
            return
        if self._schedule:
            self._trial_step(elapsed)
        else:
            self._running_step(elapsed, now)

    def _start_trial(self) -> None:
        self.trials += 1
        self._blocks = {}
        self._schedule = [self.candidates[0], self.candidates[1]] * 2
        self._block_steps = []
        self._set(self._schedule[0])

    def _trial_step(self, elapsed: float) -> None:
        threads = self._schedule[0]
        self._block_steps.append(elapsed)
        other = self._per_step(next(c for c in self.candidates if c != threads))
        over_budget = sum(self._block_steps) > 1.5 * other * self.block
        if len(self._block_steps) < self.block and not over_budget:
            return
        per_step = statistics.median(self._block_steps)
        if over_budget:  # cut short: never better than the time it already took
            per_step = max(per_step, sum(self._block_steps) / len(self._block_steps))
        self._blocks.setdefault(threads, []).append(per_step)
        self._block_steps = []
        self._schedule.pop(0)
        if self._schedule:
            self._set(self._schedule[0])
            return
        self._finish_trial()

    def _per_step(self, threads: int) -> float:
        """Seconds per step of `threads` in this trial (the mean of its blocks; inf: none yet)."""
        blocks = self._blocks.get(threads)
        return statistics.mean(blocks) if blocks else float("inf")

    def _finish_trial(self) -> None:
        times = {c: self._per_step(c) for c in self.candidates}
        winner = min(self.candidates, key=lambda c: times[c])
        loser = max(self.candidates, key=lambda c: times[c])
        decisive = times[loser] > 2.0 * times[winner]
        if decisive and winner == self.chosen and self.trials > 1:
            self.recheck_s = min(2.0 * self.recheck_s, self.max_recheck_s)
        else:
            self.recheck_s = self.base_recheck_s
        self.chosen = winner
        self._expected = times[winner]
        self._recent.clear()
        self._running_since = self._clock()
        self._set(winner)

    def _running_step(self, elapsed: float, now: float) -> None:
        self._recent.append(elapsed)
        slower = (
            len(self._recent) == self.block
            and statistics.median(self._recent) > 1.5 * self._expected
        )
        if slower or now - self._running_since >= self.recheck_s:
            if slower:
                self.recheck_s = self.base_recheck_s
            self._start_trial()


@contextlib.contextmanager
def threads_for_run(value: int | str) -> Iterator[AdaptiveThreads | None]:
    """The run's intra-op threads: a fixed count (yields None), or for `adaptive` an
    AdaptiveThreads the training loop reports its steps to. The previous count is restored
    after the run."""
    previous = torch.get_num_threads()
    try:
        threads = resolve_threads(value)
        if value == ADAPTIVE and threads > 1:
            yield AdaptiveThreads(threads)
        else:
            torch.set_num_threads(threads)
            yield None
    finally:
        torch.set_num_threads(previous)
