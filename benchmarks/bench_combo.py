"""Time per update of COMBO vs CQL on CPU, with the same actor/critic networks.

Pendulum-sized data (3-dim observations, 1-dim actions, 4000 transitions), d3rlpy's default
actor/critic (256-256), batch size 256, 10 action samples; COMBO's own defaults for the model
(5 members of 4 x 200 swish units) and rollouts (50000 x 5 steps every 1000 updates).

COMBO's cost per update = its update (mixing, critic with the penalty on model states, actor)
+ one rollout round / rollout_interval. Both parts are measured separately: the updates
interleaved with CQL's in rounds (rotating order, median of per-round ratios), the rollout round
on its own. Dynamics pretraining is a one-off cost and not included.

    .venv/bin/python benchmarks/bench_combo.py
    .venv/bin/python benchmarks/bench_combo.py --sam --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from _common import (
    batch_pool,
    build_algo,
    interleaved_times,
    median_ratio,
    quiet_d3rlpy,
    warm_up,
)

from samrl.combo import COMBOConfig
from samrl.sam import SAMFactory
from samrl.testing.data import random_dataset

BATCH_SIZE = 256


def build(name: str, sam: bool, seed: int = 0) -> tuple[Any, Any]:
    dataset = random_dataset(
        discrete=False, n_episodes=20, episode_length=200, observation_size=3, action_size=1
    )
    params: dict[str, Any] = {"batch_size": BATCH_SIZE, "n_action_samples": 10}
    if name == "combo":
        # Updates are timed without rollouts; one round is timed apart (see module doc).
        params["rollout_interval"] = 10**9
    algo = build_algo(name, dataset, params, SAMFactory(rho=0.05) if sam else None, seed)
    return algo, dataset


def time_rollouts(algo: Any, repeats: int) -> float:
    impl = algo.impl
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        impl.generate_rollouts(fallback=impl.start_observations)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sam", action="store_true", help="SAM (rho 0.05) on every network")
    args = parser.parse_args()
    quiet_d3rlpy()
    torch.set_num_threads(args.threads)

    algos = {name: build(name, args.sam) for name in ("cql", "combo")}
    pool = batch_pool(algos["cql"][1], args.block, BATCH_SIZE)
    # warm-up; COMBO's first update fills the model buffer
    warm_up((algo for algo, _ in algos.values()), pool[:3])
    # Two algorithms: the rotating order alternates cql, combo / combo, cql.
    per_round = interleaved_times(
        {name: algo for name, (algo, _) in algos.items()}, pool, args.rounds, reseed=False
    )
    cql = statistics.median(per_round["cql"])
    combo = statistics.median(per_round["combo"])
    ratio = median_ratio(per_round["combo"], per_round["cql"])
    combo_algo = algos["combo"][0]
    rollout = time_rollouts(combo_algo, repeats=2)
    interval = COMBOConfig().rollout_interval
    amortized = combo + rollout / interval
    optim = "SAM rho 0.05" if args.sam else "Adam"
    print(
        f"{optim}, {args.threads} thread(s), batch {BATCH_SIZE}, {args.rounds}x{args.block} updates"
    )
    print(f"  CQL   update             {1e3 * cql:8.2f} ms")
    print(f"  COMBO update             {1e3 * combo:8.2f} ms   ratio {ratio:.2f}")
    print(
        f"  COMBO rollout round      {1e3 * rollout:8.1f} ms "
        f"({combo_algo.config.rollout_batch_size} x {combo_algo.config.rollout_horizon} steps)"
    )
    print(
        f"  COMBO amortized/update   {1e3 * amortized:8.2f} ms   ratio {amortized / cql:.2f} "
        f"(rollouts every {interval} updates)"
    )


if __name__ == "__main__":
    main()
