"""Pieces shared by the benchmark scripts: building algorithms on synthetic data, interleaved
timing, load averages and tables.

The scripts run as ``python benchmarks/bench_x.py``, which puts this folder on sys.path, so they
import this module as ``from _common import ...``. Heavy libraries (torch, d3rlpy) are imported
inside the functions that need them, so that a script such as bench_sweep.py, which only times
subprocesses, does not load them.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

#: A plain d3rlpy script, as a user would write it: reads a D4RL-layout file with h5py, builds
#: d3rlpy's MDPDataset and calls `fit` on d3rlpy.algos.<argv[2]>(batch_size=argv[3]) for
#: argv[4] steps in one epoch. argv[5] "quiet": no log files, no progress bar, no model file;
#: "defaults": everything `fit` does by default (run it in a scratch working directory).
STOCK_FIT = """
import sys
import h5py
import numpy as np
import d3rlpy

path, config_class, batch_size, n_steps, mode = sys.argv[1:6]
with h5py.File(path, "r") as f:
    arrays = {k: f[k][()] for k in ("observations", "actions", "rewards", "terminals", "timeouts")}
dataset = d3rlpy.dataset.MDPDataset(
    arrays["observations"],
    arrays["actions"],
    arrays["rewards"],
    arrays["terminals"].astype(np.float32),
    arrays["timeouts"].astype(np.float32),
)
algo = getattr(d3rlpy.algos, config_class)(batch_size=int(batch_size)).create(device="cpu:0")
quiet = {}
if mode == "quiet":
    quiet = dict(
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
        show_progress=False,
        save_interval=10**9,
    )
algo.fit(dataset, n_steps=int(n_steps), n_steps_per_epoch=int(n_steps), **quiet)
"""


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


def write_d4rl_file(path: Path, n: int, obs_dim: int, act_dim: int, seed: int = 0) -> None:
    """A D4RL-layout HDF5 file of `n` random transitions (with next_observations, as D4RL's
    files have): episodes of 1000 steps ending in a timeout, every third one in a terminal."""
    import h5py
    import numpy as np

    episode = 1000
    rng = np.random.default_rng(seed)
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    ends = np.arange(episode - 1, n, episode)
    terminals[ends[::3]] = True
    timeouts[ends] = ~terminals[ends]
    if not (terminals[-1] or timeouts[-1]):
        timeouts[-1] = True
    with h5py.File(path, "w") as f:
        obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
        f["observations"] = obs
        f["next_observations"] = np.concatenate([obs[1:], obs[:1]])
        del obs
        f["actions"] = rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = terminals
        f["timeouts"] = timeouts


def run_child(
    command: Sequence[str], cwd: Path | None = None, timeout: float | None = None
) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds from spawn to exit) of one child process; SystemExit with
    the end of its stderr if it fails. A child still running after `timeout` seconds is
    killed and its wall time is infinite (a measurement censored at the timeout)."""
    # stderr goes to a file, not a pipe: nobody reads a pipe while wait4 waits, and a child that
    # writes more than the pipe holds (a progress bar redrawn for minutes) would block forever
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
        # with a timeout, poll (50 ms steps) rather than kill from a timer thread: a timer could
        # signal a pid already reaped, perhaps reused; here the child is killed only while it is
        # known to be running. Without one, block: the wall time is exact.
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                process.kill()
                os.wait4(process.pid, 0)
                return 0.0, math.inf
            time.sleep(0.05)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            err = stderr.read().decode(errors="replace")
            raise SystemExit(f"{' '.join(command[:4])} failed: {err[-2000:]}")
    return usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


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
