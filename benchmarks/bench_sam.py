"""Time per update of Adam, SAM (rho 0.05) and a sharpness probe (every 10 steps), on CPU.

Hopper-sized data (11-dim observations, 3-dim continuous actions; DQN: 4 / 2 discrete actions),
d3rlpy's default networks (256-256) and batch size 256. The three variants run interleaved:
each round times one block of updates of every variant, in a rotating order, so machine noise
(other processes, thermal drift) hits all of them alike. Ratios to Adam are the median over
rounds of the per-round ratio (the target check); the ratio of each variant's fastest block is
printed beside it. No assertion: the table says which targets were met.

    .venv/bin/python benchmarks/bench_sam.py                 # all six algorithms
    .venv/bin/python benchmarks/bench_sam.py --algos cql --rounds 20 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

import d3rlpy
import numpy as np
import structlog
import torch
from d3rlpy.optimizers import OptimizerFactory

from samrl.algos import algorithm_table, build_for_training
from samrl.sam import SAMFactory, install
from samrl.testing import random_dataset

ALGORITHMS = ["cql", "iql", "td3_plus_bc", "bc", "sac", "dqn"]
VARIANTS: dict[str, Callable[[], OptimizerFactory | None]] = {
    "adam": lambda: None,
    "sam": lambda: SAMFactory(rho=0.05),
    "probe10": lambda: SAMFactory(rho=0.05, probe_every=10),
}
SAM_TARGET = {"cql": 1.9}  # others: 2.0
SAM_TARGET_DEFAULT = 2.0
PROBE_TARGET = 1.12
BATCH_SIZE = 256


def build(name: str, variant: str, seed: int = 0) -> tuple[Any, Any]:
    facts = algorithm_table()[name]
    d3rlpy.seed(seed)
    if facts.discrete:
        dataset = random_dataset(
            discrete=True, n_episodes=20, episode_length=100, observation_size=4, action_size=2
        )
    else:
        dataset = random_dataset(
            discrete=False, n_episodes=20, episode_length=100, observation_size=11, action_size=3
        )
    params: dict[str, Any] = {"batch_size": BATCH_SIZE}
    factory = VARIANTS[variant]()
    if factory is not None:
        for field in facts.networks.values():
            params[field] = factory
    algo = facts.config_class(**params).create(device="cpu")
    build_for_training(algo, dataset)
    install(algo)
    return algo, dataset


def time_block(algo: Any, batches: list[Any]) -> float:
    start = time.perf_counter()
    for batch in batches:
        algo.update(batch)
    return (time.perf_counter() - start) / len(batches)


def bench(name: str, rounds: int, block: int, warmup: int) -> dict[str, Any]:
    algos = {v: build(name, v) for v in VARIANTS}
    np.random.seed(0)
    dataset = algos["adam"][1]
    pool = [dataset.sample_transition_batch(BATCH_SIZE) for _ in range(block)]
    for algo, _ in algos.values():
        for batch in pool[:warmup]:
            algo.update(batch)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    order = list(VARIANTS)
    for r in range(rounds):
        for variant in order[r % len(order) :] + order[: r % len(order)]:
            torch.manual_seed(r)
            times[variant].append(time_block(algos[variant][0], pool))
    ratios = {
        v: statistics.median(t / a for t, a in zip(times[v], times["adam"], strict=True))
        for v in VARIANTS
    }
    # Contention only ever adds time: the fastest block of each variant is a second, less
    # noise-sensitive estimate, printed beside the median of per-round ratios.
    min_ratios = {v: min(times[v]) / min(times["adam"]) for v in VARIANTS}
    return {
        "ms": {v: 1e3 * statistics.median(t) for v, t in times.items()},
        "ratio": ratios,
        "min_ratio": min_ratios,
    }


def profile(name: str, updates: int) -> None:
    algo, dataset = build(name, "sam")
    np.random.seed(0)
    batches = [dataset.sample_transition_batch(BATCH_SIZE) for _ in range(updates)]
    algo.update(batches[0])
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches:
        algo.update(batch)
    profiler.disable()
    print(f"\n## cProfile of {updates} SAM updates of {name} (cumulative, top 30)\n")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=ALGORITHMS, choices=ALGORITHMS)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=20, help="updates per timed block")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--profile", action="store_true", help="cProfile the SAM variant too")
    args = parser.parse_args()

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, CPU, torch.set_num_threads({args.threads}) "
        f"(os.cpu_count() = {os.cpu_count()}), batch {BATCH_SIZE}, 256-256 networks, "
        f"{args.rounds} interleaved rounds x {args.block} updates per variant\n"
    )
    print("| algorithm | Adam ms/update | SAM ms/update | SAM / Adam (target) | SAM / Adam, "
          "fastest blocks | probe10 ms/update | probe10 / Adam (target) | probe10 / Adam, "
          "fastest blocks |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.algos:
        result = bench(name, args.rounds, args.block, args.warmup)
        ms, ratio, fastest = result["ms"], result["ratio"], result["min_ratio"]
        sam_target = SAM_TARGET.get(name, SAM_TARGET_DEFAULT)
        sam_ok = "ok" if ratio["sam"] <= sam_target else "MISSED"
        probe_ok = "ok" if ratio["probe10"] <= PROBE_TARGET else "MISSED"
        print(
            f"| {name} | {ms['adam']:.2f} | {ms['sam']:.2f} "
            f"| {ratio['sam']:.2f} (<= {sam_target}: {sam_ok}) | {fastest['sam']:.2f} "
            f"| {ms['probe10']:.2f} | {ratio['probe10']:.3f} (<= {PROBE_TARGET}: {probe_ok}) "
            f"| {fastest['probe10']:.3f} |",
            flush=True,
        )
    if args.profile:
        for name in args.algos:
            profile(name, updates=args.block)


if __name__ == "__main__":
    main()
