"""Time per update of the SAM family relative to Adam, on CPU, measured in one run.

Hopper-sized data (11-dim observations, 3-dim actions), d3rlpy's default 256-256 networks,
batch 256, every network with the same optimizer. All variants of an algorithm run interleaved:
each round times one block of updates of every variant, in a rotating order, so machine noise
hits all of them alike; a ratio is the median over rounds of the per-round ratio. The load
average is printed before and after, since the ratios are only as good as the machine was quiet.

    .venv/bin/python benchmarks/bench_variants.py
    .venv/bin/python benchmarks/bench_variants.py --algos cql --rounds 20 --threads 2
    .venv/bin/python benchmarks/bench_variants.py --variants "looksam k=5" gsam
"""

from __future__ import annotations

import argparse
import logging
import os
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

ALGORITHMS = ["cql", "td3_plus_bc"]
BATCH_SIZE = 256
RHO = 0.05
VARIANTS: dict[str, Callable[[], OptimizerFactory | None]] = {
    "adam": lambda: None,
    "sam": lambda: SAMFactory(rho=RHO),
    "periodic_sam k=5": lambda: SAMFactory(rho=RHO, variant="periodic_sam", k=5),
    "looksam k=5": lambda: SAMFactory(rho=RHO, variant="looksam", k=5),
    "gsam": lambda: SAMFactory(rho=RHO, variant="gsam"),
    "msam 4 chunks": lambda: SAMFactory(rho=RHO, variant="msam", m=BATCH_SIZE // 4),
}
# Targets: (reference variant, highest ratio to it). None: measured, no target.
TARGETS: dict[str, tuple[str, float] | None] = {
    "sam": None,
    "periodic_sam k=5": ("adam", 1.25),
    "looksam k=5": ("adam", 1.25),
    "gsam": ("sam", 1.05),
    "msam 4 chunks": None,
}


def build(name: str, variant: str, seed: int = 0) -> tuple[Any, Any]:
    facts = algorithm_table()[name]
    d3rlpy.seed(seed)
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


def bench(name: str, rounds: int, block: int, warmup: int) -> dict[str, dict[str, float]]:
    algos = {v: build(name, v)[0] for v in VARIANTS}
    dataset = build(name, "adam")[1]
    np.random.seed(0)
    pool = [dataset.sample_transition_batch(BATCH_SIZE) for _ in range(block)]
    for algo in algos.values():
        for batch in pool[:warmup]:
            algo.update(batch)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    order = list(VARIANTS)
    for r in range(rounds):
        for variant in order[r % len(order) :] + order[: r % len(order)]:
            torch.manual_seed(r)
            times[variant].append(time_block(algos[variant], pool))

    def ratio(v: str, ref: str) -> float:
        return statistics.median(t / a for t, a in zip(times[v], times[ref], strict=True))

    return {
        "ms": {v: 1e3 * statistics.median(t) for v, t in times.items()},
        "to_adam": {v: ratio(v, "adam") for v in VARIANTS},
        "to_sam": {v: ratio(v, "sam") for v in VARIANTS},
    }


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=ALGORITHMS, choices=ALGORITHMS)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=10, help="updates per timed block")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="adam and sam always run (the references)",
    )
    args = parser.parse_args()
    for name in list(VARIANTS):
        if name not in ("adam", "sam", *args.variants):
            del VARIANTS[name]

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, CPU, torch.set_num_threads({args.threads}) "
        f"(os.cpu_count() = {os.cpu_count()}), batch {BATCH_SIZE}, 256-256 networks, rho {RHO}, "
        f"{args.rounds} interleaved rounds x {args.block} updates per variant; "
        f"load average before: {_load()}\n"
    )
    print("| algorithm | variant | ms/update | / Adam | / SAM | target |")
    print("|---|---|---:|---:|---:|---|")
    for name in args.algos:
        result = bench(name, args.rounds, args.block, args.warmup)
        for variant in VARIANTS:
            target = TARGETS.get(variant)
            verdict = "-"
            if target is not None:
                ref, limit = target
                value = result["to_adam" if ref == "adam" else "to_sam"][variant]
                verdict = f"<= {limit} x {ref}: {'ok' if value <= limit else 'MISSED'}"
            print(
                f"| {name} | {variant} | {result['ms'][variant]:.2f} "
                f"| {result['to_adam'][variant]:.2f} | {result['to_sam'][variant]:.3f} "
                f"| {verdict} |",
                flush=True,
            )
    print(f"\nload average after: {_load()}")


if __name__ == "__main__":
    main()
