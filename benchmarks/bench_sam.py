"""Time per update of Adam, SAM (rho 0.05) and a sharpness probe (every 10 steps), on CPU.

Hopper-sized data (11-dim observations, 3-dim continuous actions; DQN: 4 / 2 discrete actions),
d3rlpy's default networks (256-256) and batch size 256. The three variants run interleaved:
each round times one block of updates of every variant, in a rotating order, so machine noise
(other processes, thermal drift) hits all of them alike. Ratios to Adam are the median over
rounds of the per-round ratio (the target check); the ratio of each variant's fastest block is
printed beside it. No assertion: the table says which targets were met.

    .venv/bin/python benchmarks/bench_sam.py                 # all six algorithms
    .venv/bin/python benchmarks/bench_sam.py --algos cql --rounds 20 --profile
    .venv/bin/python benchmarks/bench_sam.py --loop   # per training step: sampling + update
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
from collections.abc import Callable
from typing import Any

import torch
from _common import (
    SampledBatches,
    batch_pool,
    build_algo,
    cpu_banner,
    hopper_dataset,
    interleaved_times,
    markdown_header,
    markdown_row,
    median_ms,
    median_ratio,
    quiet_d3rlpy,
    warm_up,
)
from d3rlpy.optimizers import OptimizerFactory

from samrl.algos import algorithm_table
from samrl.sam import SAMFactory

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
    dataset = hopper_dataset(discrete=algorithm_table()[name].discrete)
    algo = build_algo(name, dataset, {"batch_size": BATCH_SIZE}, VARIANTS[variant](), seed)
    return algo, dataset


def bench(name: str, rounds: int, block: int, warmup: int, loop: bool) -> dict[str, Any]:
    algos = {v: build(name, v) for v in VARIANTS}
    dataset = algos["adam"][1]
    pool = batch_pool(dataset, block, BATCH_SIZE)
    warm_up((algo for algo, _ in algos.values()), pool[:warmup])
    if loop:
        pool = SampledBatches(dataset, block, BATCH_SIZE)  # type: ignore[assignment]
    times = interleaved_times({v: algo for v, (algo, _) in algos.items()}, pool, rounds)
    ratios = {v: median_ratio(times[v], times["adam"]) for v in VARIANTS}
    # Contention only ever adds time: the fastest block of each variant is a second, less
    # noise-sensitive estimate, printed beside the median of per-round ratios.
    min_ratios = {v: min(times[v]) / min(times["adam"]) for v in VARIANTS}
    return {"ms": median_ms(times), "ratio": ratios, "min_ratio": min_ratios}


def profile(name: str, updates: int) -> None:
    algo, dataset = build(name, "sam")
    batches = batch_pool(dataset, updates, BATCH_SIZE)
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
    parser.add_argument(
        "--loop", action="store_true", help="time training-loop steps: batch sampling + update"
    )
    args = parser.parse_args()

    quiet_d3rlpy()
    torch.set_num_threads(args.threads)
    print(
        cpu_banner(args.threads, BATCH_SIZE)
        + f"{args.rounds} interleaved rounds x {args.block} updates per variant"
        + (", each step sampling its batch (--loop)\n" if args.loop else "\n")
    )
    columns = ["algorithm", "Adam ms/update", "SAM ms/update", "SAM / Adam (target)",
               "SAM / Adam, fastest blocks", "probe10 ms/update", "probe10 / Adam (target)",
               "probe10 / Adam, fastest blocks"]  # fmt: skip
    print(markdown_header(columns, "lrrrrrrr"))
    for name in args.algos:
        result = bench(name, args.rounds, args.block, args.warmup, args.loop)
        ms, ratio, fastest = result["ms"], result["ratio"], result["min_ratio"]
        sam_target = SAM_TARGET.get(name, SAM_TARGET_DEFAULT)
        sam_ok = "ok" if ratio["sam"] <= sam_target else "MISSED"
        probe_ok = "ok" if ratio["probe10"] <= PROBE_TARGET else "MISSED"
        print(
            markdown_row(
                name,
                f"{ms['adam']:.2f}",
                f"{ms['sam']:.2f}",
                f"{ratio['sam']:.2f} (<= {sam_target}: {sam_ok})",
                f"{fastest['sam']:.2f}",
                f"{ms['probe10']:.2f}",
                f"{ratio['probe10']:.3f} (<= {PROBE_TARGET}: {probe_ok})",
                f"{fastest['probe10']:.3f}",
            ),
            flush=True,
        )
    if args.profile:
        for name in args.algos:
            profile(name, updates=args.block)


if __name__ == "__main__":
    main()
