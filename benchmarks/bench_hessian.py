"""Cost of the top Hessian eigenvalue of critic losses on CPU (no assertions; prints a table).

Problems, each on one minibatch of 1024 transitions (obs_dim 17, act_dim 6, Hopper/HalfCheetah
sized):
- ``mlp``: a 23-256-256-1 ReLU MLP (72k parameters), MSE to random targets;
- ``sac``: d3rlpy 2.8.1's SAC critic (two 256-256 Q-functions, 145k parameters) built on a small
  synthetic MDPDataset; its TD loss ``impl.compute_critic_loss(batch, impl.compute_target(batch))``
  with the target computed once.

For each, Lanczos and power iteration (k = 1, tol 1e-3 on the relative residual) report seconds
per Hessian-vector product, iterations, products and total time (graph build included).

Run: ``.venv/bin/python benchmarks/bench_hessian.py [--threads N] [--batch 1024] [--tol 1e-3]``
On a machine shared with other jobs, ``--threads 1`` avoids OpenMP oversubscription stalls
(measured here: 2 threads under load were 10-25x slower per product than 1 thread).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from _common import random_mdp_dataset, rule_header

from samrl.analysis.curvature import HessianOperator, top_eigenvalues

OBS_DIM, ACT_DIM = 17, 6
Problem = tuple[Callable[[], torch.Tensor], list[torch.nn.Parameter]]


def mlp_problem(batch: int, seed: int = 0) -> Problem:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(OBS_DIM + ACT_DIM, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 1),
    )
    x = torch.randn(batch, OBS_DIM + ACT_DIM, generator=gen)
    y = torch.randn(batch, 1, generator=gen)
    return (lambda: ((net(x) - y) ** 2).mean()), list(net.parameters())


def sac_problem(batch: int, seed: int = 0) -> Problem:
    import d3rlpy
    from d3rlpy.torch_utility import TorchMiniBatch

    dataset = random_mdp_dataset(OBS_DIM, ACT_DIM, seed)
    d3rlpy.seed(seed)
    sac = d3rlpy.algos.SACConfig(batch_size=batch).create(device="cpu:0")
    sac.build_with_dataset(dataset)
    impl = sac.impl
    assert impl is not None
    tb = TorchMiniBatch.from_batch(
        dataset.sample_transition_batch(batch),
        gamma=sac.config.gamma,
        compute_returns_to_go=False,
        device="cpu:0",
    )
    target = impl.compute_target(tb).detach()
    params = list(impl.modules.q_funcs.parameters())
    return (lambda: impl.compute_critic_loss(tb, target).critic_loss), params


def seconds_per_hvp(loss_fn: Callable[[], torch.Tensor], params: list, reps: int = 10) -> float:
    op = HessianOperator(loss_fn, params)
    v = torch.randn(op.n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    op.matvec(v)  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        op.matvec(v)
    return (time.perf_counter() - start) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, tol {args.tol}")
    header = (
        f"{'problem':<8}{'params':>8}{'method':>9}{'s/HVP':>9}{'iters':>7}{'HVPs':>6}"
        f"{'total s':>9}{'lambda_max':>13}{'conv':>6}"
    )
    print(rule_header(header))
    for name, build in (("mlp", mlp_problem), ("sac", sac_problem)):
        loss_fn, params = build(args.batch)
        n = sum(p.numel() for p in params)
        per = seconds_per_hvp(loss_fn, params)
        for method in ("lanczos", "power"):
            info: dict = {}
            start = time.perf_counter()
            vals, _ = top_eigenvalues(
                loss_fn, params, 1, method=method, tol=args.tol, seed=0, info=info
            )
            total = time.perf_counter() - start
            print(
                f"{name:<8}{n:>8}{method:>9}{per:>9.4f}{info['n_iter']:>7}{info['n_hvp']:>6}"
                f"{total:>9.2f}{float(vals[0]):>13.5g}{'yes' if info['converged'] else 'no':>6}"
            )


if __name__ == "__main__":
    main()
