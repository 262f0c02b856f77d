"""Dataset subsystem timings (prints a table; no assertions).

    .venv/bin/python benchmarks/bench_data.py [--load-size 1000000] [--mujoco-steps 20000]

1. load_dataset("file:...") of a D4RL-layout file with random data (target <= 10 s for 1M)
2. generating pendulum-medium, 100k transitions (target <= 30 s)
3. MuJoCo (Hopper-v5) collection with an untrained SAC policy, scaled to 100k transitions
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

import d3rlpy
import gymnasium as gym
import numpy as np
import torch

from samrl.data import load_dataset, mujoco
from samrl.data.hdf5 import write_d4rl_hdf5
from samrl.data.transitions import Transitions


def random_d4rl_file(path: pathlib.Path, size: int, obs_dim: int = 11, act_dim: int = 3) -> None:
    rng = np.random.default_rng(0)
    timeouts = np.zeros(size, bool)
    timeouts[999::1000] = True
    terminals = np.zeros(size, bool)
    terminals[rng.choice(size, size // 2000, replace=False)] = True
    timeouts &= ~terminals
    timeouts[-1] = not terminals[-1]
    data = Transitions(
        observations=rng.normal(size=(size, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(size, act_dim)).astype(np.float32),
        rewards=rng.normal(size=size).astype(np.float32),
        terminals=terminals,
        timeouts=timeouts,
        next_observations=rng.normal(size=(size, obs_dim)).astype(np.float32),
    )
    write_d4rl_hdf5(path, data, {"env_id": "Hopper-v5"})


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--load-size", type=int, default=1_000_000)
    parser.add_argument("--pendulum-size", type=int, default=100_000)
    parser.add_argument("--mujoco-steps", type=int, default=20_000)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        os.environ["SAMRL_DATA_DIR"] = str(root / "cache")

        path = root / "random_d4rl.hdf5"
        write_s = timed(lambda: random_d4rl_file(path, args.load_size))
        rows.append(
            (f"write D4RL-layout file, {args.load_size} transitions", f"{write_s:.2f} s", "-")
        )
        load_s = timed(lambda: load_dataset(f"file:{path}"))
        rows.append(
            (f"load_dataset(file:), {args.load_size} transitions", f"{load_s:.2f} s", "<= 10 s")
        )
        split_s = timed(lambda: load_dataset(f"file:{path}", test_fraction=0.1))
        rows.append(("  same, test_fraction=0.1", f"{split_s:.2f} s", "-"))

        gen_s = timed(lambda: load_dataset("pendulum-medium", size=args.pendulum_size))
        rows.append(
            (f"generate pendulum-medium, {args.pendulum_size}", f"{gen_s:.2f} s", "<= 30 s")
        )
        cart_s = timed(lambda: load_dataset("cartpole-medium", size=args.pendulum_size))
        rows.append((f"generate cartpole-medium, {args.pendulum_size}", f"{cart_s:.2f} s", "-"))

        sac = d3rlpy.algos.SACConfig().create(device="cpu:0")
        sac.build_with_env(gym.make("Hopper-v5"))
        policy = root / "untrained_sac.d3"
        sac.save(str(policy))
        collect_s = timed(
            lambda: mujoco.collect(
                policy,
                "Hopper-v5",
                size=args.mujoco_steps,
                seed=0,
                stream="bench",
                work_dir=root / "collect",
            )
        )
        per_100k = collect_s * 100_000 / args.mujoco_steps
        rows.append(
            (f"Hopper-v5 collection, untrained SAC, {args.mujoco_steps}", f"{collect_s:.2f} s", "-")
        )
        rows.append(("  -> per 100k transitions", f"{per_100k:.1f} s", "-"))

    width = max(len(r[0]) for r in rows)
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    print(f"{'what':<{width}}  {'time':>9}  target")
    for what, took, target in rows:
        print(f"{what:<{width}}  {took:>9}  {target}")


if __name__ == "__main__":
    main()
