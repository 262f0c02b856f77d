"""CQL update time with 1, 2, ... torch threads and `adaptive`, without and with competing load.

For the demo's networks (64-64) and d3rlpy's default (256-256), Adam and SAM (rho 0.05), batch
256, Hopper-sized data: each thread count is timed in interleaved rounds (one block of updates
per configuration per round, in a rotating order). `adaptive` is samrl's AdaptiveThreads: what
the default `train.threads: auto` runs for CQL (whose updates are bitwise the same with 1 and 2
threads; tests/test_threads.py) and `train.threads: adaptive` for any algorithm. Its state is
kept across rounds as across a run's epochs, so its column includes the cost of its trials.
`--competing N` first starts N busy-loop processes (what another job on the workstation looks
like to torch's threads) and stops them at the end. The
load average is printed before and after. No assertion: the table is for choosing
`train.threads` (samrl/run/threads.py) and for the README.

    .venv/bin/python benchmarks/bench_threads.py                 # as the machine is
    .venv/bin/python benchmarks/bench_threads.py --competing 1   # one other busy process
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
from _common import build_algo, hopper_dataset, load_average, markdown_header, markdown_row
from _common import quiet_d3rlpy as quiet
from d3rlpy.models.encoders import VectorEncoderFactory

from samrl.run.sampling import Sampler
from samrl.run.threads import AdaptiveThreads, available_cores
from samrl.sam import SAMFactory

NETWORKS = {"64-64": [64, 64], "256-256": [256, 256]}
BATCH_SIZE = 256


def _algo(dataset: Any, hidden: list[int], optimizer: str) -> Any:
    params = {
        "batch_size": BATCH_SIZE,
        "actor_encoder_factory": VectorEncoderFactory(hidden),
        "critic_encoder_factory": VectorEncoderFactory(hidden),
    }
    return build_algo("cql", dataset, params, SAMFactory(rho=0.05) if optimizer == "sam" else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=None)
    parser.add_argument("--competing", type=int, default=0, help="busy processes to start")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block", type=int, default=30, help="updates per timed block")
    args = parser.parse_args()
    thread_counts = args.threads or sorted({1, 2, available_cores()})

    quiet()
    dataset = hopper_dataset()
    sampler = Sampler(dataset)
    algos = {(n, o): _algo(dataset, h, o) for n, h in NETWORKS.items() for o in ("adam", "sam")}
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.competing)
    ]
    try:
        time.sleep(1.0 if busy else 0.0)
        print(
            f"torch {torch.__version__}, CPU, {available_cores()} cores, CQL batch {BATCH_SIZE}, "
            f"{args.competing} competing busy process(es), {args.rounds} rounds x {args.block} "
            f"updates; load average before: {load_average()}\n"
        )
        variants: list[int | str] = [*thread_counts, "adaptive"]
        # adaptive keeps its state (the count chosen, when to measure again) across rounds, as it
        # would across a run's steps; each block restarts its clock like a new epoch does.
        tuners = {key: AdaptiveThreads(available_cores()) for key in algos}
        times: dict[tuple[str, str, int | str], list[float]] = {}
        for algo in algos.values():  # warm-up
            algo.update(sampler.transition_batch(BATCH_SIZE))
        for r in range(args.rounds):
            for key, algo in algos.items():
                for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
                    tuner = tuners[key] if variant == "adaptive" else None
                    if tuner is None:
                        torch.set_num_threads(int(variant))
                    else:
                        tuner.resume()
                    start = time.perf_counter()
                    for _ in range(args.block):
                        algo.update(sampler.transition_batch(BATCH_SIZE))
                        if tuner is not None:
                            tuner.step_done()
                    elapsed = (time.perf_counter() - start) / args.block
                    times.setdefault((*key, variant), []).append(elapsed)
        columns = ["networks", "optimizer"] + [
            f"{t} thread(s) ms/update" if t != "adaptive" else "adaptive ms/update (chose, trials)"
            for t in variants
        ]
        print(markdown_header(columns, "ll" + "r" * len(variants)))
        for net, optimizer in algos:
            cells = [1e3 * statistics.median(times[(net, optimizer, t)]) for t in variants]
            best = min(cells[:-1])
            tuner = tuners[(net, optimizer)]
            text = [f"{c:.1f} ({c / best:.2f}x best)" for c in cells]
            text[-1] += f" ({tuner.chosen}, {tuner.trials})"
            print(markdown_row(net, optimizer, *text), flush=True)
        print(f"\nload average after: {load_average()}")
    finally:
        for process in busy:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
