"""Curvature library against dense Hessians of tiny problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

from samrl.analysis.curvature import (
    HessianOperator,
    flatten,
    hutchinson_trace,
    hvp,
    spectral_density,
    top_eigenvalues,
    unflatten,
)


class TinyProblem:
    """A 4-6-1 tanh MLP (37 parameters) with MSE on fixed random data, and its dense Hessian."""

    def __init__(self, dtype: torch.dtype = torch.float64, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)
        ).to(dtype)
        with torch.no_grad():
            for p in self.model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        # drawn in float64 for every dtype, so the float32 problem is the same problem
        self.x = torch.randn(32, 4, generator=gen, dtype=torch.float64).to(dtype)
        self.y = torch.randn(32, 1, generator=gen, dtype=torch.float64).to(dtype)
        self.params = list(self.model.parameters())
        self.names = [n for n, _ in self.model.named_parameters()]

    def loss_fn(self) -> torch.Tensor:
        return ((self.model(self.x) - self.y) ** 2).mean()

    def dense_hessian(self) -> torch.Tensor:
        def f(flat: torch.Tensor) -> torch.Tensor:
            ps = dict(zip(self.names, unflatten(flat, self.params), strict=True))
            return ((functional_call(self.model, ps, (self.x,)) - self.y) ** 2).mean()

        w = flatten([p.detach().double() for p in self.params])
        return torch.autograd.functional.hessian(f, w)


@pytest.fixture(scope="module")
def problem() -> TinyProblem:
    return TinyProblem()


@pytest.fixture(scope="module")
def spectrum(problem: TinyProblem) -> torch.Tensor:
    return torch.linalg.eigvalsh(problem.dense_hessian())  # ascending


def test_flatten_unflatten_roundtrip(problem: TinyProblem) -> None:
    flat = flatten([p.detach() for p in problem.params])
    back = unflatten(flat, problem.params)
    assert all(torch.equal(a, b.detach()) for a, b in zip(back, problem.params, strict=True))


def test_hvp_quadratic_exact() -> None:
    gen = torch.Generator().manual_seed(1)
    b = torch.randn(7, 7, generator=gen, dtype=torch.float64)
    a = b @ b.T - 3 * torch.eye(7, dtype=torch.float64)  # symmetric, indefinite
    x = torch.nn.Parameter(torch.randn(7, generator=gen, dtype=torch.float64))
    v = torch.randn(7, generator=gen, dtype=torch.float64)
    out = hvp(lambda: 0.5 * x @ a @ x, [x], v)
    torch.testing.assert_close(out, a @ v, rtol=1e-12, atol=1e-12)
    # list form, split over two parameters
    x1 = torch.nn.Parameter(x.detach()[:3].clone())
    x2 = torch.nn.Parameter(x.detach()[3:].clone())
    out_l = hvp(
        lambda: 0.5 * torch.cat([x1, x2]) @ a @ torch.cat([x1, x2]), [x1, x2], [v[:3], v[3:]]
    )
    torch.testing.assert_close(torch.cat(out_l), a @ v, rtol=1e-12, atol=1e-12)


def test_hvp_matches_dense(problem: TinyProblem) -> None:
    h = problem.dense_hessian()
    v = torch.randn(h.shape[0], generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(hvp(problem.loss_fn, problem.params, v), h @ v)


def test_hvp_linear_param_is_zero() -> None:
    # the loss is linear in b: its Hessian rows are zero, and unused parameters get zeros
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    unused = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    v = torch.ones(6, dtype=torch.float64)
    out = hvp(lambda: (w**2).sum() + 3 * b.sum(), [w, b, unused], v)
    torch.testing.assert_close(out, torch.tensor([2.0, 2.0, 0, 0, 0, 0], dtype=torch.float64))


@pytest.mark.parametrize("method", ["lanczos", "power"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_eigenvalues_match_dense(
    problem: TinyProblem, spectrum: torch.Tensor, method: str, k: int
) -> None:
    info: dict = {}
    vals, vecs = top_eigenvalues(problem.loss_fn, problem.params, k, method=method, info=info)
    expected = spectrum.flip(0)[:k]
    assert info["converged"]
    assert vals.shape == (k,) and vecs.shape == (k, spectrum.numel())
    torch.testing.assert_close(vals, expected, rtol=1e-3, atol=0)
    assert torch.all(vals[:-1] >= vals[1:])
    torch.testing.assert_close(vecs.norm(dim=1), torch.ones(k, dtype=torch.float64))


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvectors_tight_tol(
    problem: TinyProblem, spectrum: torch.Tensor, method: str
) -> None:
    vals, vecs = top_eigenvalues(problem.loss_fn, problem.params, 3, method=method, tol=1e-7)
    torch.testing.assert_close(vals, spectrum.flip(0)[:3], rtol=1e-9, atol=0)
    h = problem.dense_hessian()
    for lam, v in zip(vals, vecs, strict=True):
        assert float((h @ v - lam * v).norm()) < 1e-5 * float(spectrum.abs().max())


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_by_value_not_magnitude(method: str) -> None:
    # dominant-magnitude eigenvalue is negative: the top ones by value are 3 and 2
    diag = torch.tensor([3.0, -10.0, 2.0, -5.0, 0.5], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(3)).double())
    a = q @ torch.diag(diag) @ q.T
    x = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    vals, _ = top_eigenvalues(lambda: 0.5 * x @ a @ x, [x], 2, method=method, tol=1e-8)
    torch.testing.assert_close(vals, torch.tensor([3.0, 2.0], dtype=torch.float64))


def test_top_eigenvalue_float32(spectrum: torch.Tensor) -> None:
    p32 = TinyProblem(dtype=torch.float32)
    vals, _ = top_eigenvalues(p32.loss_fn, p32.params, 1)
    assert abs(float(vals[0]) - float(spectrum[-1])) < 1e-3 * float(spectrum[-1])


def test_hutchinson_trace(problem: TinyProblem, spectrum: torch.Tensor) -> None:
    trace = float(spectrum.sum())
    est, se = hutchinson_trace(problem.loss_fn, problem.params, n_samples=200, seed=0)
    assert se > 0
    assert abs(est - trace) < 3 * se
    ses = [hutchinson_trace(problem.loss_fn, problem.params, n, seed=0)[1] for n in (10, 100, 1000)]
    assert ses[0] > ses[1] > ses[2]
    assert np.isnan(hutchinson_trace(problem.loss_fn, problem.params, 1)[1])


def test_spectral_density(problem: TinyProblem, spectrum: torch.Tensor) -> None:
    lo, hi = float(spectrum[0]), float(spectrum[-1])
    span = hi - lo
    grid, density, (nodes, weights) = spectral_density(
        problem.loss_fn, problem.params, n_vectors=8, lanczos_steps=20, seed=0
    )
    assert abs(np.trapezoid(density, grid) - 1.0) < 1e-3
    assert np.all(density >= 0)
    assert abs(weights.sum() - 1.0) < 1e-12 and np.all(weights >= 0)
    tol = 1e-6 * span
    assert nodes.min() >= lo - tol and nodes.max() <= hi + tol
    support = grid[density > 1e-4 * density.max()]
    assert support.min() <= lo + 0.01 * span
    assert support.max() >= hi - 0.01 * span


def test_spectral_density_given_grid(problem: TinyProblem, spectrum: torch.Tensor) -> None:
    lo, hi = float(spectrum[0]), float(spectrum[-1])
    grid_in = np.linspace(lo - 1, hi + 1, 500)
    grid, density, _ = spectral_density(
        problem.loss_fn, problem.params, 4, 10, seed=1, grid=grid_in, sigma=0.05
    )
    assert np.array_equal(grid, grid_in)
    assert abs(np.trapezoid(density, grid) - 1.0) < 1e-3


def test_operator_reuses_one_loss_evaluation(problem: TinyProblem) -> None:
    calls = []

    def counted() -> torch.Tensor:
        calls.append(1)
        return problem.loss_fn()

    op = HessianOperator(counted, problem.params)
    for _ in range(5):
        op.matvec(torch.ones(op.n, dtype=torch.float64))
    assert len(calls) == 1 and op.n_matvec == 5


def test_global_rng_and_params_untouched(problem: TinyProblem) -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    before = [p.detach().clone() for p in problem.params]

    def noisy_loss() -> torch.Tensor:
        # a closure that draws from the global RNG: every evaluation must see the same draws
        noise = 1e-3 * torch.randn(problem.y.shape, dtype=problem.y.dtype)
        return ((problem.model(problem.x) - problem.y - noise) ** 2).mean()

    v = torch.ones(sum(p.numel() for p in problem.params), dtype=torch.float64)
    hvp(noisy_loss, problem.params, v)
    assert torch.equal(torch.get_rng_state(), state)
    for method in ("lanczos", "power"):
        top_eigenvalues(noisy_loss, problem.params, 2, method=method)
        assert torch.equal(torch.get_rng_state(), state)
    hutchinson_trace(noisy_loss, problem.params, 5)
    assert torch.equal(torch.get_rng_state(), state)
    spectral_density(noisy_loss, problem.params, 2, 5)
    assert torch.equal(torch.get_rng_state(), state)
    for p, b in zip(problem.params, before, strict=True):
        assert torch.equal(p.detach(), b) and p.grad is None


def test_seeded_results_reproducible(problem: TinyProblem) -> None:
    a = hutchinson_trace(problem.loss_fn, problem.params, 20, seed=5)
    b = hutchinson_trace(problem.loss_fn, problem.params, 20, seed=5)
    c = hutchinson_trace(problem.loss_fn, problem.params, 20, seed=6)
    assert a == b and a != c
