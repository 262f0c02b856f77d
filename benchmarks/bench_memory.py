"""Peak memory and start-up of `samrl train` against stock d3rlpy `fit` on one D4RL-layout file.

    python benchmarks/bench_memory.py --sizes 100000 1000000 2000000 --rounds 2

For each size N a D4RL-layout HDF5 file of N transitions (17-dim observations, 6-dim actions,
episodes of 1000 steps ending in a timeout, every third one in a terminal; with
next_observations, as D4RL's files have) is generated in a temporary directory. Then, in
interleaved rounds (the order alternates), two child processes train TD3+BC for 20 updates of
batch 256 on the CPU from that file:

- stock: a script that reads the file with h5py, builds d3rlpy's MDPDataset and calls `fit`
  (no logging, no model files);
- samrl: `python -m samrl train` on a config naming the file (`file:<path>`), no evaluation.

Each child's peak resident memory is its own `ru_maxrss` (os.wait4 on that child), its wall
time runs from spawn to exit (imports, reading the file, building, 20 updates, writing).
Printed per size: the medians, the ratios samrl/stock, and the load average before and after,
since the wall times depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from _common import STOCK_FIT, run_child, write_d4rl_file

from samrl.data.provenance import fingerprint

OBS_DIM, ACT_DIM = 17, 6
N_STEPS, BATCH = 20, 256


def samrl_config(path: Path, folder: Path) -> Path:
    config = {
        "name": "bench_memory",
        "algo": {"name": "td3_plus_bc", "params": {"batch_size": BATCH}},
        "dataset": {"name": f"file:{path}"},
        "optim": {"name": "adam"},
        "train": {
            "n_steps": N_STEPS,
            "n_steps_per_epoch": N_STEPS,
            "eval_episodes": 0,
            "device": "cpu",
        },
        "output": {"dir": str(folder / "runs")},
    }
    config_path = folder / "bench_memory.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return config_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 2_000_000])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(
        f"TD3+BC, {N_STEPS} updates of batch {BATCH}, CPU; {OBS_DIM}-dim obs, {ACT_DIM}-dim actions"
    )
    print(
        f"{'N':>9} {'stock MB':>9} {'samrl MB':>9} {'mem x':>6} "
        f"{'stock s':>8} {'samrl s':>8} {'time x':>7}  load avg before -> after"
    )
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            data = folder / "data.hdf5"
            write_d4rl_file(data, n, OBS_DIM, ACT_DIM)
            # the file's sha256 is computed once per file and kept beside it (samrl's first
            # run of a file does it): measured here are the runs after that
            fingerprint(data)
            config = samrl_config(data, folder)
            commands = {
                "stock": [
                    sys.executable, "-c", STOCK_FIT, str(data), "TD3PlusBCConfig", str(BATCH),
                    str(N_STEPS), "quiet",
                ],
                "samrl": [
                    sys.executable, "-m", "samrl", "train", "--config", str(config),
                    "--quiet", "--overwrite",
                ],
            }  # fmt: skip
            results: dict[str, list[tuple[float, float]]] = {"stock": [], "samrl": []}
            load_before = os.getloadavg()
            for r in range(args.rounds):
                order = ("stock", "samrl") if r % 2 == 0 else ("samrl", "stock")
                for name in order:
                    results[name].append(run_child(commands[name]))
            load_after = os.getloadavg()
        mem = {k: statistics.median(m for m, _ in v) for k, v in results.items()}
        wall = {k: statistics.median(w for _, w in v) for k, v in results.items()}
        print(
            f"{n:>9} {mem['stock']:>9.0f} {mem['samrl']:>9.0f} {mem['samrl'] / mem['stock']:>6.2f} "
            f"{wall['stock']:>8.1f} {wall['samrl']:>8.1f} {wall['samrl'] / wall['stock']:>7.2f}  "
            f"{load_before[0]:.2f} -> {load_after[0]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
