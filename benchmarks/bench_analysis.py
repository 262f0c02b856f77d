"""Cost of curvature on real algorithms (no assertions; prints two tables).

1. ``network``: the top Hessian eigenvalue (Lanczos, k = 1, tol 1e-3) of the critic loss of
   d3rlpy SAC and CQL with the default 256-256 critics, on 1024 transitions, through
   ``samrl.analysis.network_loss.network_loss_fn`` (the algorithm's own loss: target, noise,
   CQL's conservative term). Target: <= 5 s on CPU.
2. ``training``: a small CQL+SAM training run with ``analysis.hessian`` (defaults: critic and
   actor, top_k 1, 1024 transitions) every epoch; the time spent in ``hessian_row`` as a
   fraction of the rest of the training time.

Run: ``.venv/bin/python benchmarks/bench_analysis.py [--threads 1] [--steps 1000]``
(``--threads 1`` is steadier on a shared machine; see bench_hessian.py).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import yaml
from _common import load_average, quiet_d3rlpy, random_mdp_dataset, rule_header

OBS_DIM, ACT_DIM = 17, 6


def network_table(batch: int) -> None:
    import d3rlpy

    from samrl.algos import build_for_training
    from samrl.analysis.curvature import top_eigenvalues
    from samrl.analysis.network_loss import evaluation_batch, network_loss_fn

    dataset = random_mdp_dataset(OBS_DIM, ACT_DIM, seed=0)
    print(f"\n1. top eigenvalue through network_loss_fn, {batch} transitions (Lanczos, tol 1e-3)")
    header = f"{'algo':<6}{'net':>8}{'params':>9}{'HVPs':>6}{'total s':>9}{'lambda_max':>13}"
    print(rule_header(header))
    for name, config in (
        ("sac", d3rlpy.algos.SACConfig(batch_size=256)),
        ("cql", d3rlpy.algos.CQLConfig(batch_size=256)),
    ):
        d3rlpy.seed(0)
        algo = config.create(device="cpu:0")
        build_for_training(algo, dataset)
        eval_batch = evaluation_batch(algo, dataset, batch, seed=0)
        for net in ("critic", "actor"):
            start = time.perf_counter()
            loss_fn, params = network_loss_fn(algo, net, eval_batch, seed=0)
            info: dict = {}
            vals, _ = top_eigenvalues(loss_fn, params, 1, tol=1e-3, info=info)
            total = time.perf_counter() - start
            n_params = sum(p.numel() for p in params)
            print(
                f"{name:<6}{net:>8}{n_params:>9}{info['n_hvp']:>6}{total:>9.2f}"
                f"{float(vals[0]):>13.5g}"
            )


def training_table(steps: int, per_epoch: int, size: int) -> None:
    import samrl.analysis.during_training as during
    from samrl.config import load_config
    from samrl.data import load_dataset
    from samrl.run.train import run_training

    spent: list[float] = []
    original = during.hessian_row

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    during.hessian_row = timed  # train.py imports it from the module at each epoch
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAMRL_DATA_DIR"] = str(Path(tmp) / "data")
        load_dataset("pendulum-random", size=size)  # generate outside the timing
        print(
            f"\n2. CQL+SAM (256-256, batch 256), pendulum-random {size}, {steps} steps, "
            f"{per_epoch} per epoch, analysis.hessian defaults every epoch"
        )
        header = f"{'hessian':<9}{'wall s':>9}{'hessian s':>11}{'per epoch s':>13}{'fraction':>10}"
        print(rule_header(header))
        for with_hessian in (False, True):
            config = {
                "name": "bench",
                "algo": {"name": "cql", "params": {"batch_size": 256}},
                "dataset": {"name": "pendulum-random", "size": size},
                "optim": {"name": "sam", "rho": 0.05},
                "train": {
                    "n_steps": steps,
                    "n_steps_per_epoch": per_epoch,
                    "eval_episodes": 0,
                    "device": "cpu",
                    "save_interval": 10**6,
                },
                "analysis": {"hessian": {} if with_hessian else None},
                "output": {"dir": str(Path(tmp) / "runs"), "run_id": f"h{int(with_hessian)}"},
            }
            path = Path(tmp) / "c.yaml"
            path.write_text(yaml.safe_dump(config))
            spent.clear()
            start = time.perf_counter()
            result = run_training(load_config(path), progress=False)
            wall = time.perf_counter() - start
            assert result.status == "completed", result.message
            h = sum(spent)
            per = h / len(spent) if spent else 0.0
            frac = h / (wall - h)
            label = "every ep" if with_hessian else "off"
            print(f"{label:<9}{wall:>9.2f}{h:>11.2f}{per:>13.2f}{frac:>10.1%}")
    during.hessian_row = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--per-epoch", type=int, default=200)
    ap.add_argument("--size", type=int, default=20000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    quiet_d3rlpy()
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load_average()}")
    network_table(args.batch)
    training_table(args.steps, args.per_epoch, args.size)


if __name__ == "__main__":
    main()
