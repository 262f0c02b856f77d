"""Training-loop steps/s: samrl (Adam, SAM, probe) against stock d3rlpy `fit`, on CPU.

Each step samples a minibatch (batch 256) and updates. "stock" is d3rlpy 2.8.1's own
`LearnableBase.fit` (no file logging, no progress bar: the cheapest stock loop) on the
algorithm built with d3rlpy's defaults (256-256 networks); the samrl variants run samrl's own
loop (samrl.run.loop.train_steps, what `samrl train` runs) with the same networks, threads and data
(Hopper-sized random data; discrete algorithms 4-dim observations and 2 actions). All variants
of one algorithm are timed interleaved: each round runs one block of steps of every variant in a
rotating order, so machine noise hits them alike; ratios are medians over rounds of per-round
ratios, printed with their range over rounds (the noise a single round would carry). The load
average is printed before and after. No assertion: the table says which targets were met.

On a GPU, `--device cuda:0` runs every variant there (`--compile-graph` adds d3rlpy's CUDA
graphs, which samrl refuses with SAM or a probe: those variants are then reported as refused).
The minibatches are gathered on the CPU and moved by d3rlpy, as in `samrl train`.

    .venv/bin/python benchmarks/bench_loop.py
    .venv/bin/python benchmarks/bench_loop.py --algos bc td3_plus_bc --rounds 5 --threads 2
    .venv/bin/python benchmarks/bench_loop.py --algos td3_plus_bc iql --rounds 30  # the targets
    python benchmarks/bench_loop.py --device cuda:0 --algos cql bc --rounds 5         # on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from _common import build_algo, hopper_dataset, load_average, markdown_header, markdown_row
from d3rlpy.logging import D3RLPyLogger, NoopAdapterFactory
from tqdm import tqdm

from samrl.algos import algorithm_table
from samrl.errors import ConfigError
from samrl.run.loop import train_steps
from samrl.run.sampling import Sampler
from samrl.run.threads import resolve_threads
from samrl.sam import SAMFactory

ALGORITHMS = [
    "bc",
    "td3_plus_bc",
    "iql",
    "cql",
    "sac",
    "dqn",
    "discrete_cql",
    "decision_transformer",
]
VARIANTS = ["stock", "adam", "sam", "probe10"]
STOCK_TARGET = {"td3_plus_bc": 1.25, "iql": 1.2, "bc": 1.8}  # samrl-Adam / stock steps/s
SAM_TARGET = {"cql": 1.9}  # SAM / Adam time per step; others 2.0
BATCH_SIZE = 256


def _quiet() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def _optimizer(variant: str) -> Any:
    if variant == "sam":
        return SAMFactory(rho=0.05)
    if variant == "probe10":
        return SAMFactory(rho=0.05, probe_every=10)
    return None


def _params(name: str, compile_graph: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"batch_size": BATCH_SIZE, "compile_graph": compile_graph}
    if algorithm_table()[name].transformer:
        params.update(context_size=20, max_timestep=1000)
    return params


def _stock_block(algo: Any, dataset: Any, n: int) -> Callable[[], None]:
    def run() -> None:
        algo.fit(
            dataset,
            n_steps=n,
            n_steps_per_epoch=n,
            logger_adapter=NoopAdapterFactory(),
            show_progress=False,
            save_interval=10**9,
        )

    return run


def _samrl_block(algo: Any, dataset: Any, n: int, transformer: bool) -> Callable[[], None]:
    sampler = Sampler(dataset)
    logger = D3RLPyLogger(
        algo=algo,
        adapter_factory=NoopAdapterFactory(),
        experiment_name="bench",
        n_steps_per_epoch=n,
        with_timestamp=False,
    )
    bar = tqdm(disable=True)
    epoch = [0]

    def run() -> None:
        epoch[0] += 1
        train_steps(algo, sampler, transformer, n, logger, bar)
        logger.commit(epoch[0], epoch[0] * n)

    return run


def bench(
    name: str, rounds: int, block: int, device: str = "cpu", compile_graph: bool = False
) -> dict[str, Any]:
    """Per variant: `<v>_ms` and `<v>_per_adam` (median over rounds) with its range; a variant
    samrl refuses to build (SAM with CUDA graphs) is left out and named in `refused`."""
    facts = algorithm_table()[name]
    dataset = hopper_dataset(discrete=facts.discrete)
    runs: dict[str, Callable[[], None]] = {}
    refused: dict[str, str] = {}
    for variant in VARIANTS:
        try:
            algo = build_algo(
                name, dataset, _params(name, compile_graph), _optimizer(variant), device=device
            )
        except ConfigError as exc:
            refused[variant] = str(exc)
            continue
        if variant == "stock":
            runs[variant] = _stock_block(algo, dataset, block)
        else:
            runs[variant] = _samrl_block(algo, dataset, block, facts.transformer)
    for run in runs.values():  # warm-up
        run()
    variants = [v for v in VARIANTS if v in runs]
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
            np.random.seed(r)
            torch.manual_seed(r)
            start = time.perf_counter()
            runs[variant]()
            times[variant].append((time.perf_counter() - start) / block)
    out: dict[str, Any] = {f"{v}_ms": 1e3 * statistics.median(t) for v, t in times.items()}
    out["refused"] = refused
    for v in variants:
        ratios = [a / b for a, b in zip(times[v], times["adam"], strict=True)]
        out[f"{v}_per_adam"] = statistics.median(ratios)
        out[f"{v}_per_adam_range"] = (min(ratios), max(ratios))
    return out


def _range(bounds: tuple[float, float]) -> str:
    """The smallest and largest per-round ratio: how far one round's noise moves the median."""
    return f"{bounds[0]:.2f}-{bounds[1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=ALGORITHMS, choices=ALGORITHMS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=20, help="training steps per timed block")
    parser.add_argument(
        "--threads",
        default="1",
        help="torch threads, the same for every variant: a number or auto (every core)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--compile-graph", action="store_true", help="d3rlpy's CUDA graphs (compile_graph)"
    )
    args = parser.parse_args()

    _quiet()  # fit warns "Skip building models" on every block
    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    print(
        f"torch {torch.__version__}, {_device_name(args.device)}, {threads} CPU thread(s), "
        f"compile_graph={args.compile_graph}, batch {BATCH_SIZE}, d3rlpy default networks "
        f"(256-256), {args.rounds} interleaved rounds x {args.block} steps per variant; "
        f"load average before: {load_average()}\n"
    )
    columns = ["algorithm", "stock ms/step", "samrl Adam ms/step", "Adam speed-up vs stock",
               "rounds' range", "SAM ms/step", "SAM / Adam", "rounds' range",
               "probe10 / Adam"]  # fmt: skip
    print(markdown_header(columns, "lrrrrrrrr"))
    for name in args.algos:
        result = bench(name, args.rounds, args.block, args.device, args.compile_graph)
        speedup = result["stock_per_adam"]
        target = STOCK_TARGET.get(name, 1.0)
        sam_target = SAM_TARGET.get(name, 2.0)
        sam = result.get("sam_per_adam")
        print(
            markdown_row(
                name,
                f"{result['stock_ms']:.2f}",
                f"{result['adam_ms']:.2f}",
                f"{speedup:.3f}x (>= {target}: {'ok' if speedup >= target else 'MISSED'})",
                _range(result["stock_per_adam_range"]),
                f"{result['sam_ms']:.2f}" if sam is not None else "refused",
                f"{sam:.3f} (<= {sam_target}: {'ok' if sam <= sam_target else 'MISSED'})"
                if sam is not None
                else "refused",
                _range(result["sam_per_adam_range"]) if sam is not None else "",
                f"{result['probe10_per_adam']:.3f}" if "probe10_ms" in result else "refused",
            ),
            flush=True,
        )
        for variant, why in result["refused"].items():
            print(f"  {name} {variant}: refused: {why}")
    print(f"\nload average after: {load_average()}")


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return "CPU"


if __name__ == "__main__":
    main()
