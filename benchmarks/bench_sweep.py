"""Sweep throughput: the same 8 small runs with `--jobs 1` and with `--jobs 2`.

Each sweep is a real `samrl sweep` command (driver, one process per run, summary). The ratio
of wall times is the throughput gain of running two at once; on 2 idle cores the target is
>= 1.7. Other load on the machine shows in the load averages printed beside it.

    python benchmarks/bench_sweep.py [--runs 8] [--steps 300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import load_average

from samrl.run.threads import available_cores


def sweep_file(root: Path, runs: int, steps: int) -> Path:
    config = {
        "algo": {
            "name": "td3_plus_bc",
            "params": {
                "batch_size": 64,
                "actor_encoder_factory": {"type": "vector", "params": {"hidden_units": [64, 64]}},
                "critic_encoder_factory": {"type": "vector", "params": {"hidden_units": [64, 64]}},
            },
        },
        "dataset": {"name": "pendulum-random", "size": 5000},
        "optim": {"name": "sam", "rho": 0.05},
        "train": {
            "n_steps": steps,
            "n_steps_per_epoch": steps // 2,
            "eval_episodes": 0,
            "device": "cpu",
        },
    }
    path = root / "bench.yaml"
    spec = {"config": config, "grid": {"optim.rho": [0.0, 0.05]}, "seeds": f"0-{runs // 2 - 1}"}
    path.write_text(yaml.safe_dump(spec))
    return path


def timed_sweep(path: Path, out: Path, jobs: int) -> float:
    command = [sys.executable, "-m", "samrl", "sweep", str(path), "--quiet"]
    command += ["--jobs", str(jobs), "--out", str(out), "--name", f"jobs{jobs}"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"sweep --jobs {jobs} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="runs per sweep (even)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["SAMRL_DATA_DIR"] = str(root / "data")
        path = sweep_file(root, args.runs, args.steps)
        # Generate the dataset once, outside the timings.
        subprocess.run(
            [sys.executable, "-m", "samrl", "sweep", str(path), "--quiet", "--out",
             str(root / "warmup"), "--seeds", "0", "--set", "train.n_steps=2",
             "--set", "train.n_steps_per_epoch=1"],
            check=True, capture_output=True,
        )  # fmt: skip
        print(f"cores: {available_cores()}; load average before: {load_average()}")
        one = timed_sweep(path, root / "out", 1)
        print(f"--jobs 1: {args.runs} runs in {one:6.1f} s  ({args.runs / one * 60:.2f} runs/min)")
        two = timed_sweep(path, root / "out", 2)
        print(f"--jobs 2: {args.runs} runs in {two:6.1f} s  ({args.runs / two * 60:.2f} runs/min)")
        print(f"load average after: {load_average()}")
        print(f"throughput ratio jobs2/jobs1: {one / two:.2f} (target >= 1.7 on 2 idle cores)")


if __name__ == "__main__":
    main()
