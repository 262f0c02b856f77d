"""The training loop's inner part: n updates on sampled minibatches, metrics to d3rlpy's logger.

It does what d3rlpy's `fit` does per step (sample a batch, `algo.update`, log every metric)
with the batch gathered by samrl.sampling (bitwise d3rlpy's batch, without building it one
transition at a time) and without fit's per-step timers. `samrl train` and
benchmarks/bench_loop.py both run it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from d3rlpy.logging import D3RLPyLogger
from tqdm import tqdm

from samrl.sampling import Sampler

_SHOWN_EVERY = 20  # steps between progress-bar loss updates


def train_steps(
    algo: Any, sampler: Sampler, transformer: bool, n_steps: int, logger: D3RLPyLogger, bar: tqdm
) -> dict[str, float]:
    """n_steps updates; every metric goes to d3rlpy's logger; returns the means over them."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    batch_size = algo.config.batch_size
    for i in range(n_steps):
        if transformer:
            batch = sampler.trajectory_batch(batch_size, algo.config.context_size)
        else:
            batch = sampler.transition_batch(batch_size)
        for name, value in algo.update(batch).items():
            logger.add_metric(name, value)
            sums[name] += value
            counts[name] += 1
        bar.update(1)
        if i % _SHOWN_EVERY == _SHOWN_EVERY - 1:
            shown = sorted(k for k in sums if k.endswith(("_loss", "_sharpness")) or k == "loss")
            bar.set_postfix({k: f"{sums[k] / counts[k]:.3g}" for k in shown}, refresh=False)
    return {k: sums[k] / counts[k] for k in sums}
