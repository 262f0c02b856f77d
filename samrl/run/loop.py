"""The training loop's inner part: n updates on sampled minibatches, metrics to d3rlpy's logger.

It does what d3rlpy's `fit` does per step (sample a batch, `algo.update`, log every metric)
with the batch gathered by samrl.run.sampling (bitwise d3rlpy's batch, without building it one
transition at a time) and without fit's per-step timers. `samrl train` and
benchmarks/bench_loop.py both run it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from d3rlpy.logging import D3RLPyLogger
from tqdm import tqdm

from samrl.metrics import is_headline
from samrl.run.sampling import Sampler
from samrl.run.threads import AdaptiveThreads

_SHOWN_EVERY = 20  # steps between progress-bar loss updates


class StopFlag(Protocol):
    """Asks the loop to stop at the next step boundary (samrl.run.stopping.StopRequest)."""

    @property
    def requested(self) -> bool: ...


@dataclasses.dataclass
class EpochProgress:
    """The epoch in progress: updates done and every metric value so far. A checkpoint taken
    mid-epoch (on a signal) carries it, so the resumed epoch logs what an uninterrupted one
    would: d3rlpy's logger gets the values only when the epoch is complete."""

    steps: int = 0
    values: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "values": self.values}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EpochProgress:
        return cls(int(data["steps"]), dict(data["values"])) if data else cls()


def train_steps(
    algo: Any,
    sampler: Sampler,
    transformer: bool,
    n_steps: int,
    logger: D3RLPyLogger,
    bar: tqdm,
    *,
    partial: EpochProgress | None = None,
    stop: StopFlag | None = None,
    threads: AdaptiveThreads | None = None,
) -> dict[str, float]:
    """Updates until `n_steps` are done in this epoch (continuing `partial`), then every metric
    value goes to d3rlpy's logger and the means are returned. When `stop` is requested, stops
    at a step boundary and returns {} with `partial` holding the epoch so far. `threads`
    (an adapting run's, samrl/run/threads.py) is told of every step and may change the thread count
    between steps; between epochs the run has 1 thread."""
    progress = partial if partial is not None else EpochProgress()
    values = progress.values
    # Running sums, added in step order from 0.0 as the epoch means always were: the progress
    # bar shows means without re-summing the epoch every few steps (quadratic in its length).
    sums = {k: _sum(v) for k, v in values.items()}
    if threads is not None:
        threads.resume()
    try:
        for i in range(progress.steps, n_steps):
            if stop is not None and stop.requested:
                return {}
            for name, value in algo.update(next_batch(algo, sampler, transformer)).items():
                series = values.get(name)
                if series is None:
                    values[name] = series = []
                    sums[name] = 0.0
                series.append(value)
                sums[name] += value
            progress.steps = i + 1
            if threads is not None:
                threads.step_done()
            bar.update(1)
            if not getattr(bar, "disable", False) and i % _SHOWN_EVERY == _SHOWN_EVERY - 1:
                shown = sorted(k for k in values if is_headline(k))
                bar.set_postfix(
                    {k: f"{sums[k] / len(values[k]):.3g}" for k in shown}, refresh=False
                )
    finally:
        if threads is not None:
            threads.pause()  # the work between epochs never depends on the chosen count
    for name, series in values.items():  # in first-seen order, as per-step logging would
        for value in series:
            logger.add_metric(name, value)
    return {k: sums[k] / len(v) for k, v in values.items()}


def next_batch(algo: Any, sampler: Sampler, transformer: bool) -> Any:
    """The algorithm's next minibatch: trajectories of its context size for a decision
    transformer, else transitions; of its batch size."""
    if transformer:
        return sampler.trajectory_batch(algo.config.batch_size, algo.config.context_size)
    return sampler.transition_batch(algo.config.batch_size)


def _sum(series: list[float]) -> float:
    total = 0.0
    for value in series:  # summed in step order
        total += value
    return total
