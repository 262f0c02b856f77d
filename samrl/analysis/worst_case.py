"""Sharpness measures of a loss closure at the current parameters.

- :func:`worst_case_sharpness`: max over ||eps|| <= rho of L(w + eps) - L(w), by projected
  normalized gradient ascent started at SAM's one-step point (Foret et al., 2021); the adaptive
  variant uses ASAM's ball ||eps / |w| || <= rho (Kwon et al., 2021).
- :func:`average_sharpness`: E L(w + N(0, sigma^2 I)) - L(w) by Monte Carlo.
- :func:`m_sharpness`: worst-case sharpness averaged over chunks of a batch, each chunk with its
  own perturbation (Foret et al., 2021, Sec. 4; Andriushchenko & Flammarion, 2022).

Parameters are restored bitwise and the global RNG is frozen while the closure runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from samrl.analysis._closure import (
    LossFn,
    Params,
    RngGuard,
    assign,
    evaluate,
    gradient,
    make_generator,
    snapshot,
)

__all__ = ["average_sharpness", "m_sharpness", "worst_case_sharpness"]


def _norm(tensors: list[torch.Tensor]) -> float:
    """L2 norm of a list of tensors taken as one vector (accumulated in float64)."""
    return math.sqrt(sum(float(t.detach().double().pow(2).sum()) for t in tensors))


def worst_case_sharpness(
    loss_fn: LossFn,
    params: Params,
    rho: float,
    steps: int = 1,
    *,
    adaptive: bool = False,
    step_size: float | None = None,
) -> dict[str, Any]:
    """Worst-case (SAM) sharpness max_{eps in B} L(w + eps) - L(w), estimated with ``steps``
    gradient evaluations.

    Ball B: ||eps||_2 <= rho, or with ``adaptive`` ||eps / |w| ||_2 <= rho (ASAM, T = |w|
    elementwise, no offset). Work in u = eps / T (T = 1 without ``adaptive``), where B is an
    L2 ball of radius rho and the gradient is T g:
    step 1 is SAM's estimate u = rho T g / ||T g||, i.e. eps = rho g / ||g|| (ASAM:
    eps = rho T^2 g / ||T g||); each later step is u <- proj_B(u + step_size T g' / ||T g'||)
    with g' the gradient at w + eps (default ``step_size`` = rho). The best iterate is kept, so
    the result never decreases with ``steps`` and ``steps=1`` is exactly SAM's sharpness.
    A zero gradient gives eps = 0 and sharpness 0.

    Returns a dict: ``sharpness``, ``loss`` (L(w)), ``loss_perturbed`` (best L(w + eps)),
    ``eps_norm`` (||eps||_2 of the best eps), ``eps_norm_adaptive`` (||eps / |w| || where |w| > 0;
    only with ``adaptive``), ``grad_norm`` (||g(w)||), ``best_step`` (1-based), ``losses``
    (L(w + eps_t) per step) and ``eps`` (the best perturbation, tensors shaped like params).
    """
    if rho < 0:
        raise ValueError(f"rho must be >= 0, got {rho}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    params = list(params)
    eta = rho if step_size is None else float(step_size)
    w0 = snapshot(params)
    scale = [w.abs() if adaptive else torch.ones_like(w) for w in w0]

    with RngGuard(params) as guard:
        try:
            with torch.enable_grad():  # callers may hold no_grad
                loss0 = evaluate(loss_fn, guard)
                g = gradient(loss0, params)
            base = float(loss0.detach())
            u = [rho * x for x in _unit_direction(scale, g)]
            losses, best = _projected_ascent(
                loss_fn, guard, params, w0, scale, u, rho=rho, eta=eta, steps=steps
            )
        finally:
            assign(params, w0)
    return _worst_case_result(base, best, g, losses, scale if adaptive else None)


def _unit_direction(scale: list[torch.Tensor], g: list[torch.Tensor]) -> list[torch.Tensor]:
    """T g / ||T g|| (zeros when the gradient vanishes): the ascent direction in u = eps / T."""
    tg = [t * gi for t, gi in zip(scale, g, strict=True)]
    n = _norm(tg)
    return [torch.zeros_like(x) for x in tg] if n == 0.0 else [x / n for x in tg]


def _projected_ascent(
    loss_fn: LossFn,
    guard: RngGuard,
    params: list[torch.Tensor],
    w0: list[torch.Tensor],
    scale: list[torch.Tensor],
    u: list[torch.Tensor],
    *,
    rho: float,
    eta: float,
    steps: int,
) -> tuple[list[float], tuple[float, list[torch.Tensor], int]]:
    """`steps` evaluations at w0 + T u, u moved by eta along the unit ascent direction and
    projected back into the rho ball after each: (L(w + eps_t) per step, the best
    (loss, eps, step)). The last step needs no gradient. Leaves params at the last iterate."""
    losses: list[float] = []
    best: tuple[float, list[torch.Tensor], int] | None = None
    for t in range(1, steps + 1):
        eps = [s * ui for s, ui in zip(scale, u, strict=True)]
        assign(params, [w + e for w, e in zip(w0, eps, strict=True)])
        last = t == steps
        with torch.set_grad_enabled(not last):
            loss_t = evaluate(loss_fn, guard)
        value = float(loss_t.detach())
        losses.append(value)
        if best is None or value > best[0]:
            best = (value, [e.detach().clone() for e in eps], t)
        if last:
            break
        with torch.enable_grad():
            step = _unit_direction(scale, gradient(loss_t, params))
        u = [ui + eta * si for ui, si in zip(u, step, strict=True)]
        n = _norm(u)
        if n > rho:
            u = [ui * (rho / n) for ui in u]
    assert best is not None
    return losses, best


def _worst_case_result(
    base: float,
    best: tuple[float, list[torch.Tensor], int],
    g: list[torch.Tensor],
    losses: list[float],
    scale: list[torch.Tensor] | None,
) -> dict[str, Any]:
    """`worst_case_sharpness`'s dict from L(w), the best iterate (loss, eps, step), g(w) and
    the per-step losses; `scale` (ASAM's |w|) adds the ball's own norm of eps."""
    value, eps_best, t_best = best
    out: dict[str, Any] = {
        "sharpness": value - base,
        "loss": base,
        "loss_perturbed": value,
        "eps_norm": _norm(eps_best),
        "grad_norm": _norm(g),
        "best_step": t_best,
        "losses": losses,
        "eps": eps_best,
    }
    if scale is not None:
        ratio = [
            torch.where(s > 0, e / s, torch.zeros_like(e))
            for e, s in zip(eps_best, scale, strict=True)
        ]
        out["eps_norm_adaptive"] = _norm(ratio)
    return out


def average_sharpness(
    loss_fn: LossFn,
    params: Params,
    sigma: float,
    n_samples: int = 10,
    seed: int = 0,
    *,
    adaptive: bool = False,
) -> dict[str, float]:
    """Average-case sharpness: mean over ``n_samples`` draws of L(w + eps) - L(w), with
    eps ~ N(0, sigma^2 I) (``adaptive``: eps = sigma |w| * z, z ~ N(0, I), elementwise).

    Returns ``sharpness`` (the mean), ``standard_error`` (std ddof=1 / sqrt(n); NaN for one
    sample), ``loss`` (L(w)) and ``loss_perturbed`` (mean of L(w + eps)).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    params = list(params)
    gen = make_generator(seed)
    w0 = snapshot(params)
    perturbed = np.empty(n_samples)
    with RngGuard(params) as guard:
        try:
            with torch.no_grad():
                base = float(evaluate(loss_fn, guard))
                for i in range(n_samples):
                    point = []
                    for w in w0:
                        z = torch.randn(w.shape, generator=gen, dtype=torch.float64)
                        e = sigma * z.to(device=w.device, dtype=w.dtype)
                        point.append(w + (e * w.abs() if adaptive else e))
                    assign(params, point)
                    perturbed[i] = float(evaluate(loss_fn, guard))
        finally:
            assign(params, w0)
    diffs = perturbed - base
    se = float(diffs.std(ddof=1) / math.sqrt(n_samples)) if n_samples > 1 else math.nan
    return {
        "sharpness": float(diffs.mean()),
        "standard_error": se,
        "loss": base,
        "loss_perturbed": float(perturbed.mean()),
    }


def m_sharpness(
    make_loss_fn_for_chunk: Callable[[int], LossFn],
    n_chunks: int,
    params: Params,
    rho: float,
    steps: int = 1,
    *,
    adaptive: bool = False,
    step_size: float | None = None,
) -> dict[str, Any]:
    """m-sharpness: the mean over chunks c = 0..n_chunks-1 of the worst-case sharpness of
    ``make_loss_fn_for_chunk(c)``, each chunk with its own perturbation.

    The caller splits its batch into ``n_chunks`` chunks of m examples and returns, for index c,
    a closure for the loss on chunk c (same contract as ``loss_fn``). Other arguments as in
    :func:`worst_case_sharpness`. Returns ``sharpness`` (mean over chunks), ``standard_error``
    (over chunks; NaN for one chunk), ``loss`` and ``loss_perturbed`` (means over chunks) and
    ``per_chunk`` (each chunk's sharpness).
    """
    if n_chunks < 1:
        raise ValueError(f"n_chunks must be >= 1, got {n_chunks}")
    results = [
        worst_case_sharpness(
            make_loss_fn_for_chunk(c), params, rho, steps, adaptive=adaptive, step_size=step_size
        )
        for c in range(n_chunks)
    ]
    per_chunk = np.array([r["sharpness"] for r in results])
    se = float(per_chunk.std(ddof=1) / math.sqrt(n_chunks)) if n_chunks > 1 else math.nan
    return {
        "sharpness": float(per_chunk.mean()),
        "standard_error": se,
        "loss": float(np.mean([r["loss"] for r in results])),
        "loss_perturbed": float(np.mean([r["loss_perturbed"] for r in results])),
        "per_chunk": per_chunk.tolist(),
    }
