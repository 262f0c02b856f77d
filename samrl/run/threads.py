"""torch's intra-op thread count for a training run: `train.threads` (auto, adaptive or N).

torch defaults to one intra-op thread per core. Its threads meet at every operation, so when
another process takes one of the cores the whole update waits for the descheduled thread:
measured on 2 shared cores (README "Threads", benchmarks/bench_threads.py) a second thread
makes an update up to 30x slower as soon as anything else runs, while one thread degrades only
by the share of the core it loses. On idle cores, a second thread makes 256-256 networks 1.5x
faster. No fixed count is right for both, so a run measures (`AdaptiveThreads`).

Measuring must not cost reproducibility: the thread count can change the last bits of a
result, because torch and MKL split some reductions between threads (a decision transformer's
update differs between 1 and 2 threads on every CPU tried; the MLP algorithms' updates on some
CPUs only), and RL training turns last bits into different learning curves. So:

- `auto` (the default) first checks, on copies of the built algorithm, whether its updates
  come out bitwise the same with 1 thread and with the most threads it may use
  (`thread_count_changes_updates`). If they do, the run adapts its thread count between those
  two (`AdaptiveThreads`), which cannot change its numbers. If they do not (decision
  transformers; MLPs on some CPUs), it keeps one fixed count for the whole run: a launcher's
  OMP_NUM_THREADS (samrl's sweeps set cores // jobs, Slurm --cpus-per-task), else 1. The most
  threads is the launcher's count, else every core this process may use. Off the CPU, the
  fixed count.
- `adaptive`: adapts without the check (the user accepts last-bit differences).
- N: N threads (capped to the cores this process may use).

Whether 1 and N threads agree is a property of the CPU, its instruction set and the BLAS
library's code path (MKL's `MKL_CBWR` mode), not of samrl: on one AVX-512 machine the MLP
algorithms' updates agree without a mode and disagree under `MKL_CBWR=AUTO,STRICT`, on another
the reverse. So samrl measures it in every run (the check) instead of assuming it, and records
what decides the last bits (`numerics_record`: CPU, torch's CPU capability, BLAS, MKL_CBWR)
in config.yaml beside the versions. samrl never sets MKL_CBWR itself (README, *Threads*).

torch.set_num_threads is process-wide state: `samrl train` sets it for the run only and puts
the previous value back when the run ends (`threads_for_run`); `AdaptiveThreads` changes it only
between training steps, from the training thread, and runs the work between epochs
(evaluation, Hessian analysis, checkpoints) with 1 thread, so that work's numbers never depend
on what it chose.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import os
import platform
import re
import statistics
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from samrl.envvars import available_cores
from samrl.rng import forked as forked_rng

AUTO = "auto"
ADAPTIVE = "adaptive"


def launcher_threads() -> int | None:
    """The thread count a launcher chose in OMP_NUM_THREADS (None: none did)."""
    launcher = os.environ.get("OMP_NUM_THREADS", "")
    return int(launcher) if launcher.isdigit() and int(launcher) > 0 else None


def resolve_threads(value: int | str) -> int:
    """The fixed thread count `train.threads: value` means in this process: for `auto` the
    count a launcher set in OMP_NUM_THREADS, else 1 (what `auto` keeps when it cannot adapt);
    for `adaptive` its largest candidate, the launcher's count, else every core; a number as
    given. Capped to the available cores."""
    if value in (AUTO, ADAPTIVE):
        value = launcher_threads() or (1 if value == AUTO else available_cores())
    return max(1, min(int(value), available_cores()))


def most_threads() -> int:
    """The largest count `auto` and `adaptive` try: the launcher's, else every core."""
    return resolve_threads(ADAPTIVE)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module reports."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def blas_library() -> str:
    """The BLAS torch was built with: MKL's version line when torch names one, else BLAS_INFO."""
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([^\n]*?)(?: for |\n|$)", config)
    if mkl:
        return f"MKL {mkl.group(1).strip()}"
    blas = re.search(r"BLAS_INFO=([^,\s]+)", config)
    return blas.group(1) if blas else "unknown"


def numerics_record() -> dict[str, str]:
    """What decides a result's last bits besides the seed and the thread count (status.json's
    `threads`): config.yaml records it, so two runs that differ in their last bits can be told
    apart by machine. MKL_CBWR is read from the environment MKL loaded with ("unset": MKL picks
    the fastest code path for the CPU)."""
    return {
        "cpu": cpu_model(),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "blas": blas_library(),
        "mkl_cbwr": os.environ.get("MKL_CBWR", "unset"),
    }


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

    def resume(self) -> None:
        """Called when steps resume after other work (evaluation, a checkpoint): the count in
        use is set again, and the first step after it is not timed."""
        self._set(self.threads)
        self._last = self._clock()
        self._warm = False

    def pause(self) -> None:
        """Called when steps stop for other work: it runs with 1 thread, whatever was chosen."""
        self._set(1)

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


class CannotCheck(Exception):
    """The algorithm cannot be copied for the check (the run keeps a fixed count)."""


def thread_count_changes_updates(
    algo: Any,
    draw_batch: Callable[[], Any],
    most: int,
    prepare: Callable[[Any], Any],
    updates: int = 2,
    shared: tuple[object, ...] = (),
) -> bool:
    """Whether `updates` updates of `algo` come out other than bitwise the same with `most`
    threads as with 1: losses, and every module's and optimizer's state, byte for byte.

    The updates run on deep copies of `algo`, which is left as it was, and must be a built
    algorithm that samrl's engine is not yet installed in: the engine's closures would be shared
    by a copy and act on the original. `prepare` (samrl.sam.install) installs it in each copy.
    Both copies start from the same weights and draw the same batches (`draw_batch`, seeded
    here) and random numbers; the caller's RNG states and thread count are put back. Objects in
    `shared` (the dataset, which an algorithm may hold, e.g. COMBO's rollout starts) are not
    copied: updates only read them.

    Raises CannotCheck when `algo` cannot be deep-copied.

    Whether a kernel splits a reduction differently with more threads depends on the shapes,
    not the values; these updates have the run's shapes and code paths (two updates also cover
    algorithms whose actor steps every second update).
    """
    previous = torch.get_num_threads()
    results = []
    try:
        for threads in (1, most):
            try:
                replica = copy.deepcopy(algo, memo={id(o): o for o in shared})
            except Exception as exc:  # e.g. a custom network holding a lock or a file
                raise CannotCheck(f"{type(exc).__name__}: {exc}") from exc
            prepare(replica)
            with forked_rng(), _copied_schedulers_quiet():
                torch.manual_seed(0)
                np.random.seed(0)
                torch.set_num_threads(threads)
                losses = [replica.update(draw_batch()) for _ in range(updates)]
            results.append(_state_bytes(replica, losses))
    finally:
        torch.set_num_threads(previous)
    return results[0] != results[1]


@contextlib.contextmanager
def _copied_schedulers_quiet() -> Iterator[None]:
    """Silence torch's "`optimizer.step()` has been overridden after learning rate scheduler
    initialization" for the copies' updates. A scheduler marks its optimizer's `step`; torch
    pickles (so deep-copies) an optimizer without that mark, so a copy's scheduler warns at
    every update although the copy steps exactly like the original (the check compares them).

    Process-wide while it lasts (the warnings filters are global in Python 3.11): a warning
    another thread raises with this message in these few updates is dropped too, and a filter
    another thread adds meanwhile is undone on exit. samrl checks before training starts, on
    the thread that trains."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"Seems like `optimizer.step\(\)` has been overridden",
            category=UserWarning,
        )
        yield


def _state_bytes(algo: Any, losses: list[dict[str, float]]) -> bytes:
    """`losses`, then every module's and optimizer's state as d3rlpy's checkpointer saves it."""
    buffer = io.BytesIO()
    torch.save(losses, buffer)
    algo.impl.save_model(buffer)
    return buffer.getvalue()


@dataclasses.dataclass
class RunThreads:
    """How a run uses threads, decided once its algorithm is built (`decide`): a fixed count,
    or an `AdaptiveThreads` its training loop reports to. `description` says which and why
    (status.json's `threads`)."""

    value: int | str
    description: str = ""

    def decide(
        self,
        algo: Any,
        draw_batch: Callable[[], Any],
        prepare: Callable[[Any], Any],
        *,
        on_cpu: bool = True,
        shared: tuple[object, ...] = (),
        announce: Callable[[str], object] = lambda line: None,
    ) -> AdaptiveThreads | None:
        """Settle the run's threads (see the module docstring), with `algo` built and samrl's
        engine not yet installed; `prepare` installs it and `shared` is not copied (see
        `thread_count_changes_updates`). `announce` gets a line before the check, which takes
        a few updates' time (seconds for a transformer)."""
        value, most = self.value, most_threads()
        fixed = resolve_threads(value)
        if value == ADAPTIVE and most > 1:
            return self._adapt(most, "train.threads: adaptive")
        if value != AUTO or most == 1 or not on_cpu:
            why = "train.threads" if value != AUTO else "train.threads: auto"
            return self._fix(fixed, why if on_cpu else f"{why}, not on the CPU")
        announce(
            f"samrl: train.threads auto: checking that 1 and {most} threads give the same updates"
        )
        try:
            changes = thread_count_changes_updates(algo, draw_batch, most, prepare, shared=shared)
        except CannotCheck as exc:
            return self._fix(fixed, f"the algorithm could not be copied to check threads: {exc}")
        if changes:
            why = (
                f"this algorithm's updates differ in the last bits between 1 and {most} threads "
                "on this CPU"
            )
            return self._fix(fixed, why)
        why = f"this algorithm's updates are bitwise the same with 1 and {most} threads"
        return self._adapt(most, why)

    def _adapt(self, most: int, why: str) -> AdaptiveThreads:
        self.description = f"adaptive, 1 or {most} ({why})"
        return AdaptiveThreads(most)

    def _fix(self, threads: int, why: str) -> None:
        torch.set_num_threads(threads)
        self.description = f"{threads} ({why})"


@contextlib.contextmanager
def threads_for_run(value: int | str) -> Iterator[RunThreads]:
    """The run's intra-op threads, to be settled with `RunThreads.decide` once the algorithm is
    built (until then the fixed count `value` means). The previous count is restored after the
    run."""
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(resolve_threads(value))
        yield RunThreads(value)
    finally:
        torch.set_num_threads(previous)
