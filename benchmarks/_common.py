"""Pieces shared by the benchmark scripts: building algorithms on synthetic data, interleaved
timing, load averages and tables.

The scripts run as ``python benchmarks/bench_x.py``, which puts this folder on sys.path, so they
import this module as ``from _common import ...``. Heavy libraries (torch, d3rlpy) are imported
inside the functions that need them, so that a script such as bench_sweep.py, which only times
subprocesses, does not load them.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any


def quiet_d3rlpy() -> None:
    """d3rlpy logs every build at info level through structlog; keep the tables readable."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def load_average(sep: str = " ") -> str:
    """The 1, 5 and 15 minute load averages, two decimals each."""
    return sep.join(f"{x:.2f}" for x in os.getloadavg())


def cpu_banner(threads: int, batch_size: int) -> str:
    """The start of the first line of the timing tables: torch version, threads, batch size."""
    import torch

    return (
        f"torch {torch.__version__}, CPU, torch.set_num_threads({threads}) "
        f"(os.cpu_count() = {os.cpu_count()}), batch {batch_size}, 256-256 networks, "
    )


def hopper_dataset(*, discrete: bool = False) -> Any:
    """20 random episodes of 100 steps, Hopper-sized (11-dim observations, 3-dim actions), or
    for discrete algorithms 4-dim observations and 2 actions."""
    from samrl.testing.data import random_dataset

    if discrete:
        return random_dataset(
            discrete=True, n_episodes=20, episode_length=100, observation_size=4, action_size=2
        )
    return random_dataset(
        discrete=False, n_episodes=20, episode_length=100, observation_size=11, action_size=3
    )


def random_mdp_dataset(obs_dim: int, act_dim: int, seed: int = 0) -> Any:
    """4096 random continuous transitions in episodes of 256 steps (the last one terminal)."""
    import d3rlpy
    import numpy as np

    rng = np.random.default_rng(seed)
    n, ep_len = 4096, 256
    return d3rlpy.dataset.MDPDataset(
        observations=rng.standard_normal((n, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        rewards=rng.standard_normal((n, 1)).astype(np.float32),
        terminals=(np.arange(n) % ep_len == ep_len - 1).astype(np.float32),
    )


def build_algo(
    name: str,
    dataset: Any,
    params: Mapping[str, Any],
    optimizer: Any = None,
    seed: int = 0,
    device: str = "cpu",
) -> Any:
    """samrl's algorithm `name` on `device`, built for training on `dataset`, with the SAM
    engine installed; `optimizer` (an OptimizerFactory, or None for the default) on every
    network."""
    import d3rlpy

    from samrl.algos import algorithm_table, build_for_training
    from samrl.sam import install

    facts = algorithm_table()[name]
    d3rlpy.seed(seed)
    config_params = dict(params)
    if optimizer is not None:
        for field in facts.networks.values():
            config_params[field] = optimizer
    algo = facts.config_class(**config_params).create(device=device)
    build_for_training(algo, dataset)
    install(algo)
    return algo


def batch_pool(dataset: Any, size: int, batch_size: int) -> list[Any]:
    """`size` transition minibatches, drawn after np.random.seed(0)."""
    import numpy as np

    np.random.seed(0)
    return [dataset.sample_transition_batch(batch_size) for _ in range(size)]


class SampledBatches:
    """`size` minibatches sampled from the dataset while they are iterated: timing a block over
    it measures a training-loop step (sampling + update), as `samrl train` runs it."""

    def __init__(self, dataset: Any, size: int, batch_size: int):
        self.dataset, self.size, self.batch_size = dataset, size, batch_size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Any]:
        for _ in range(self.size):
            yield self.dataset.sample_transition_batch(self.batch_size)


def warm_up(algos: Iterable[Any], batches: Sequence[Any]) -> None:
    for algo in algos:
        for batch in batches:
            algo.update(batch)


def time_block(algo: Any, batches: Sequence[Any]) -> float:
    """Seconds per update over one block of updates."""
    start = time.perf_counter()
    for batch in batches:
        algo.update(batch)
    return (time.perf_counter() - start) / len(batches)


def interleaved_times(
    algos: Mapping[str, Any], batches: Sequence[Any], rounds: int, *, reseed: bool = True
) -> dict[str, list[float]]:
    """Seconds per update of each algorithm, one block per round each, in an order that rotates
    from round to round, so machine noise (other processes, thermal drift) hits all alike.
    `reseed`: torch.manual_seed(round) before each block."""
    import torch

    times: dict[str, list[float]] = {key: [] for key in algos}
    order = list(algos)
    for r in range(rounds):
        for key in order[r % len(order) :] + order[: r % len(order)]:
            if reseed:
                torch.manual_seed(r)
            times[key].append(time_block(algos[key], batches))
    return times


def median_ratio(times: Sequence[float], reference: Sequence[float]) -> float:
    """The median over rounds of the per-round ratio."""
    return statistics.median(t / r for t, r in zip(times, reference, strict=True))


def median_ms(times: Mapping[str, Sequence[float]]) -> dict[str, float]:
    return {key: 1e3 * statistics.median(t) for key, t in times.items()}


def markdown_header(columns: Sequence[str], align: str) -> str:
    """A markdown table's header and rule; `align` has one letter a column: l(eft) or r(ight)."""
    rule = "".join("|---:" if a == "r" else "|---" for a in align)
    return f"| {' | '.join(columns)} |\n{rule}|"


def markdown_row(*cells: object) -> str:
    return f"| {' | '.join(map(str, cells))} |"


def rule_header(header: str) -> str:
    """A fixed-width table's header line over a rule of dashes as long."""
    return header + "\n" + "-" * len(header)
