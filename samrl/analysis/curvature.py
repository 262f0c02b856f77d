"""Hessian curvature of a loss closure: Hessian-vector products, top eigenvalues (Lanczos or
power iteration), Hutchinson trace and the spectral density by stochastic Lanczos quadrature.

All functions take ``loss_fn() -> scalar tensor`` (evaluated on a fixed minibatch with fixed
random draws) and the parameters it reads. The Hessian is never formed: every function builds
the gradient graph once (``create_graph=True``) and differentiates ``g . v`` again per product.
Krylov vectors, the tridiagonal matrix and all reductions are kept in float64; the products
themselves run in the parameters' dtype. Randomness comes from a seeded ``torch.Generator``; the
global RNG is frozen while the closure runs and restored afterwards. Parameters and their
``.grad`` are never modified.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from samrl.analysis._closure import (
    LossFn,
    Params,
    RngGuard,
    evaluate,
    flatten,
    gradient,
    make_generator,
    num_params,
    unflatten,
)

__all__ = [
    "HessianOperator",
    "flatten",
    "hutchinson_trace",
    "hvp",
    "spectral_density",
    "top_eigenvalues",
    "unflatten",
]

MatVec = Callable[[torch.Tensor], torch.Tensor]


class HessianOperator:
    """The Hessian of ``loss_fn`` at the current parameter values, as a linear operator.

    The loss and its gradient (with graph) are computed once, at construction; each ``matvec``
    is one extra backward pass through that graph. Vectors are flat float64 tensors on the
    parameters' device (ordering as :func:`flatten` of ``params``). ``n_matvec`` counts products.
    Build a new operator after the parameters change.
    """

    def __init__(self, loss_fn: LossFn, params: Params) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty")
        self.n = num_params(self.params)
        self.device = self.params[0].device
        with RngGuard(self.params) as guard, torch.enable_grad():
            loss = evaluate(loss_fn, guard)
            self._grads = gradient(loss, self.params, create_graph=True)
        self.loss = float(loss.detach())
        # A gradient without a graph means the loss is linear in that parameter: zero rows.
        self._active = [i for i, g in enumerate(self._grads) if g.requires_grad]
        self.n_matvec = 0

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a flat vector ``v``; returns a flat float64 vector."""
        self.n_matvec += 1
        if not self._active:
            return torch.zeros(self.n, dtype=torch.float64, device=self.device)
        vs = unflatten(v.to(self.device), self.params)
        hv = torch.autograd.grad(
            [self._grads[i] for i in self._active],
            self.params,
            grad_outputs=[vs[i] for i in self._active],
            retain_graph=True,
            allow_unused=True,
        )
        parts = [
            torch.zeros_like(p) if h is None else h for h, p in zip(hv, self.params, strict=True)
        ]
        return flatten(parts).to(torch.float64)

    __call__ = matvec


def hvp(
    loss_fn: LossFn, params: Params, v: torch.Tensor | Sequence[torch.Tensor]
) -> torch.Tensor | list[torch.Tensor]:
    """Hessian-vector product H v of ``loss_fn`` w.r.t. ``params`` (double backward).

    ``v`` is either a flat vector (returns a flat float64 vector) or a list of tensors shaped
    like ``params`` (returns such a list, in the parameters' dtypes).
    """
    op = HessianOperator(loss_fn, params)
    if isinstance(v, torch.Tensor):
        return op.matvec(v.reshape(-1))
    out = op.matvec(flatten([t.to(torch.float64) for t in v]))
    return unflatten(out, op.params)


# --------------------------------------------------------------------------------------------
# Lanczos


def _orthogonalize(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Remove the components of ``w`` along the orthonormal rows of ``basis`` (Gram-Schmidt twice,
    which keeps orthogonality at machine precision)."""
    if basis.shape[0] == 0:
        return w
    for _ in range(2):
        w = w - basis.T @ (basis @ w)
    return w


def _tridiag(alphas: list[float], betas: list[float]) -> torch.Tensor:
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t


def _lanczos(
    matvec: MatVec,
    v0: torch.Tensor,
    steps: int,
    *,
    k: int | None = None,
    tol: float = 0.0,
) -> dict[str, Any]:
    """Lanczos with full reorthogonalization, starting from ``v0``.

    Runs at most ``steps`` iterations; stops early at an invariant subspace, or (when ``k`` is
    given) once the top ``k`` Ritz pairs have residual ``|beta_m s_mi| <= tol * max|theta|``.
    Returns Ritz values ``theta`` (ascending), the eigenvectors ``s`` of the tridiagonal matrix,
    the Krylov basis ``q`` (m x n), residual norms of the Ritz pairs and convergence status.
    """
    n = v0.numel()
    steps = max(1, min(steps, n))
    q = torch.zeros(steps, n, dtype=torch.float64, device=v0.device)
    q[0] = v0 / torch.linalg.vector_norm(v0)
    alphas: list[float] = []
    betas: list[float] = []
    converged = False
    theta = s = resid = torch.zeros(0, dtype=torch.float64)
    for j in range(steps):
        w = matvec(q[j])
        alpha = float(q[j] @ w)
        w = w - alpha * q[j]
        if j > 0:
            w = w - betas[-1] * q[j - 1]
        w = _orthogonalize(w, q[: j + 1])
        beta = float(torch.linalg.vector_norm(w))
        alphas.append(alpha)
        theta, s = torch.linalg.eigh(_tridiag(alphas, betas))
        resid = (beta * s[-1, :]).abs()
        scale = max(float(theta.abs().max()), max(betas, default=0.0), 1e-300)
        # Invariant subspace: the Ritz values are exact eigenvalues.
        breakdown = beta <= 1e-10 * scale
        if k is not None and j + 1 >= min(k, n):
            top = resid[-min(k, j + 1) :]
            converged = bool((top <= tol * scale).all())
        if breakdown or converged or j + 1 == steps:
            converged = converged or breakdown or (k is not None and j + 1 == n)
            return {
                "theta": theta,
                "s": s,
                "q": q[: j + 1],
                "residuals": resid,
                "n_iter": j + 1,
                "converged": converged,
            }
        betas.append(beta)
        q[j + 1] = w / beta
    raise AssertionError("unreachable")  # pragma: no cover


def _random_normal(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(n, generator=gen, dtype=torch.float64).to(device)


def _random_rademacher(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    z = torch.randint(0, 2, (n,), generator=gen, dtype=torch.int64).to(torch.float64)
    return (2.0 * z - 1.0).to(device)


def _top_lanczos(
    op: HessianOperator, k: int, gen: torch.Generator, max_iter: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    res = _lanczos(op.matvec, _random_normal(op.n, gen, op.device), max_iter, k=k, tol=tol)
    theta, s, q = res["theta"], res["s"], res["q"]
    k_eff = min(k, theta.numel())
    vals = theta[-k_eff:].flip(0)
    vecs = (s[:, -k_eff:].flip(1).T.to(q.device)) @ q
    return vals, vecs, res["n_iter"], res["converged"]


# --------------------------------------------------------------------------------------------
# Power iteration


def _power(
    matvec: MatVec,
    v0: torch.Tensor,
    shift: float,
    deflate: torch.Tensor,
    max_iter: int,
    tol: float,
    scale: float,
) -> tuple[float, torch.Tensor, int, bool]:
    """Power iteration on ``(H - shift I)`` restricted to the complement of ``deflate``'s rows.

    Returns the Rayleigh quotient of H (unshifted), the vector, iterations used and whether the
    residual ``||H v - theta v|| <= tol * max(scale, |theta|)`` was reached.
    """
    v = _orthogonalize(v0, deflate)
    v = v / torch.linalg.vector_norm(v)
    theta = 0.0
    for it in range(1, max_iter + 1):
        w = _orthogonalize(matvec(v) - shift * v, deflate)
        theta_b = float(v @ w)
        theta = theta_b + shift
        resid = float(torch.linalg.vector_norm(w - theta_b * v))
        norm = float(torch.linalg.vector_norm(w))
        if norm == 0.0:  # v is in the null space of the shifted operator
            return theta, v, it, True
        if resid <= tol * max(scale, abs(theta), 1e-300):
            return theta, v, it, True
        v = w / norm
    return theta, v, max_iter, False


def _top_power(
    op: HessianOperator, k: int, gen: torch.Generator, max_iter: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    """Top-k eigenpairs (largest algebraic) by power iteration with deflation.

    Deflation projects found eigenvectors out of every iterate. Power iteration finds the
    eigenvalue of largest magnitude among those left; while that is positive it is also the
    largest by value. When it is negative (lambda_min of the remainder), the operator is shifted
    by it, which makes the remainder positive semi-definite, and the search is repeated.
    """
    vals: list[float] = []
    vecs = torch.zeros(0, op.n, dtype=torch.float64, device=op.device)
    shift = 0.0
    total, all_converged = 0, True
    while len(vals) < min(k, op.n):
        v0 = _random_normal(op.n, gen, op.device)
        scale = max([abs(x) for x in vals], default=0.0)
        theta, v, it, ok = _power(op.matvec, v0, shift, vecs, max_iter, tol, scale)
        total += it
        if shift == 0.0 and theta < 0.0:
            shift = theta
            continue
        all_converged = all_converged and ok
        vals.append(theta)
        vecs = torch.cat([vecs, v[None]])
    order = torch.argsort(torch.tensor(vals, dtype=torch.float64), descending=True)
    return (
        torch.tensor(vals, dtype=torch.float64)[order],
        vecs[order.to(vecs.device)],
        total,
        (all_converged),
    )


def top_eigenvalues(
    loss_fn: LossFn,
    params: Params,
    k: int = 1,
    *,
    method: Literal["lanczos", "power"] = "lanczos",
    max_iter: int | None = None,
    tol: float = 1e-3,
    seed: int = 0,
    info: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest (by value, not magnitude) Hessian eigenvalues and their eigenvectors.

    ``method="lanczos"``: Lanczos with full reorthogonalization (default ``max_iter`` 100 Krylov
    steps, capped at the number of parameters, where it is exact). ``method="power"``: power
    iteration with deflation for k > 1 (default ``max_iter`` 1000 per eigenvalue).
    Convergence: every returned pair has residual ``||H v - lambda v|| <= tol * max|lambda|``,
    which bounds the eigenvalue error by ``tol * max|lambda|`` (and by residual^2 / gap, usually
    far smaller: about 1e-6 relative at the default tol on the tests and the SAC critic).
    Returns ``(eigenvalues, eigenvectors)``: float64 tensors of shape (k,) sorted descending and
    (k, n_params) with unit-norm rows (flat, see :func:`unflatten`). If ``info`` is a dict it
    receives ``n_iter``, ``n_hvp``, ``converged`` and ``loss``; a RuntimeWarning is raised when
    the tolerance was not reached.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    op = HessianOperator(loss_fn, params)
    gen = make_generator(seed)
    if method == "lanczos":
        vals, vecs, n_iter, ok = _top_lanczos(op, k, gen, max_iter or 100, tol)
    elif method == "power":
        vals, vecs, n_iter, ok = _top_power(op, k, gen, max_iter or 1000, tol)
    else:
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    if not ok:
        warnings.warn(
            f"top_eigenvalues({method}) did not reach tol={tol} in {n_iter} iterations",
            RuntimeWarning,
            stacklevel=2,
        )
    if info is not None:
        info.update(n_iter=n_iter, n_hvp=op.n_matvec, converged=ok, loss=op.loss)
    return vals, vecs


# --------------------------------------------------------------------------------------------
# Trace and spectral density


def hutchinson_trace(
    loss_fn: LossFn, params: Params, n_samples: int = 100, seed: int = 0
) -> tuple[float, float]:
    """Hutchinson estimate of tr(H): mean of z^T H z over Rademacher probes z.

    Returns ``(estimate, standard_error)`` with standard error = sample std (ddof=1) / sqrt(n);
    it is NaN for ``n_samples == 1``.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    op = HessianOperator(loss_fn, params)
    gen = make_generator(seed)
    samples = np.empty(n_samples)
    for i in range(n_samples):
        z = _random_rademacher(op.n, gen, op.device)
        samples[i] = float(z @ op.matvec(z))
    se = float(samples.std(ddof=1) / math.sqrt(n_samples)) if n_samples > 1 else math.nan
    return float(samples.mean()), se


def spectral_density(
    loss_fn: LossFn,
    params: Params,
    n_vectors: int = 10,
    lanczos_steps: int = 80,
    seed: int = 0,
    grid: np.ndarray | Sequence[float] | None = None,
    sigma: float | None = None,
    *,
    n_grid: int = 1000,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Hessian eigenvalue density by stochastic Lanczos quadrature (Ghorbani et al., 2019).

    For each of ``n_vectors`` normalized Rademacher start vectors, ``lanczos_steps`` Lanczos
    steps (full reorthogonalization; capped at n_params) give Ritz values theta_i (the
    quadrature nodes) and weights tau_i = (first component of the i-th eigenvector of T)^2. The
    density is sum_i w_i N(t; theta_i, sigma^2) with w_i = tau_i / n_vectors, evaluated on
    ``grid`` and normalized so its trapezoid integral over the grid is exactly 1 (the default
    grid extends 6 sigma past the extreme nodes, so the renormalization is negligible there).
    Defaults: ``sigma`` = 1% of the node range (absolute 1e-3 if all nodes coincide), ``grid`` =
    ``n_grid`` equally spaced points.
    Returns ``(grid, density, (nodes, weights))``; nodes/weights are flat arrays over all start
    vectors, the weights summing to 1.
    """
    if n_vectors < 1 or lanczos_steps < 1:
        raise ValueError("n_vectors and lanczos_steps must be >= 1")
    op = HessianOperator(loss_fn, params)
    gen = make_generator(seed)
    nodes_l: list[np.ndarray] = []
    weights_l: list[np.ndarray] = []
    for _ in range(n_vectors):
        res = _lanczos(op.matvec, _random_rademacher(op.n, gen, op.device), lanczos_steps)
        nodes_l.append(res["theta"].cpu().numpy())
        weights_l.append((res["s"][0, :] ** 2).cpu().numpy() / n_vectors)
    nodes = np.concatenate(nodes_l)
    weights = np.concatenate(weights_l)
    weights = weights / weights.sum()  # exact 1 up to rounding already; remove the rounding
    lo, hi = float(nodes.min()), float(nodes.max())
    if sigma is None:
        sigma = 0.01 * (hi - lo) if hi > lo else 1e-3 * max(abs(hi), 1.0)
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if grid is None:
        grid_a = np.linspace(lo - 6 * sigma, hi + 6 * sigma, n_grid)
    else:
        grid_a = np.asarray(grid, dtype=np.float64)
    # Gaussian broadening, summed in chunks of nodes to bound memory.
    density = np.zeros_like(grid_a)
    norm = 1.0 / (sigma * math.sqrt(2 * math.pi))
    for start in range(0, nodes.size, 256):
        nd, wt = nodes[start : start + 256], weights[start : start + 256]
        density += (
            wt[None, :] * np.exp(-0.5 * ((grid_a[:, None] - nd[None, :]) / sigma) ** 2)
        ).sum(1)
    density *= norm
    mass = float(np.trapezoid(density, grid_a)) if grid_a.size > 1 else 0.0
    if not mass > 0.0:
        raise ValueError("the grid does not cover the spectrum: the density has no mass on it")
    return grid_a, density / mass, (nodes, weights)
