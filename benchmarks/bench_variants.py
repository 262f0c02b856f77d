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
from collections.abc import Callable
from typing import Any

import torch
from _common import (
    batch_pool,
    build_algo,
    cpu_banner,
    hopper_dataset,
    interleaved_times,
    load_average,
    markdown_header,
    markdown_row,
    median_ms,
    median_ratio,
    quiet_d3rlpy,
    warm_up,
)
from d3rlpy.optimizers import OptimizerFactory

from samrl.sam import SAMFactory

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
    dataset = hopper_dataset()
    algo = build_algo(name, dataset, {"batch_size": BATCH_SIZE}, VARIANTS[variant](), seed)
    return algo, dataset


def bench(name: str, rounds: int, block: int, warmup: int) -> dict[str, dict[str, float]]:
    algos = {v: build(name, v)[0] for v in VARIANTS}
    dataset = build(name, "adam")[1]
    pool = batch_pool(dataset, block, BATCH_SIZE)
    warm_up(algos.values(), pool[:warmup])
    times = interleaved_times(algos, pool, rounds)
    return {
        "ms": median_ms(times),
        "to_adam": {v: median_ratio(times[v], times["adam"]) for v in VARIANTS},
        "to_sam": {v: median_ratio(times[v], times["sam"]) for v in VARIANTS},
    }


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

    quiet_d3rlpy()
    torch.set_num_threads(args.threads)
    print(
        cpu_banner(args.threads, BATCH_SIZE)
        + f"rho {RHO}, {args.rounds} interleaved rounds x {args.block} updates per variant; "
        f"load average before: {load_average(', ')}\n"
    )
    columns = ["algorithm", "variant", "ms/update", "/ Adam", "/ SAM", "target"]
    print(markdown_header(columns, "llrrrl"))
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
                markdown_row(
                    name,
                    variant,
                    f"{result['ms'][variant]:.2f}",
                    f"{result['to_adam'][variant]:.2f}",
                    f"{result['to_sam'][variant]:.3f}",
                    verdict,
                ),
                flush=True,
            )
    print(f"\nload average after: {load_average(', ')}")


if __name__ == "__main__":
    main()
