"""Loss landscapes along random filter-normalized directions (Li et al., 2018, "Visualizing the
Loss Landscape of Neural Nets").

The loss closure is evaluated at ``w + alpha d1 (+ beta d2)`` with gradients off; the parameters
are restored bitwise afterwards and the global RNG is frozen while the closure runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from samrl.analysis._closure import (
    LossFn,
    Params,
    RngGuard,
    assign,
    evaluate,
    make_generator,
    snapshot,
    unflatten,
)

__all__ = ["filter_normalized_direction", "loss_surface_1d", "loss_surface_2d"]

Direction = Sequence[torch.Tensor] | torch.Tensor


def filter_normalized_direction(
    params: Params,
    seed: int = 0,
    *,
    one_d: Literal["zero", "copy", "normalize"] = "zero",
) -> list[torch.Tensor]:
    """A Gaussian random direction, filter-normalized to the weights.

    For a parameter with >= 2 dimensions, each filter (slice along dim 0: a Linear layer's row,
    i.e. the weights into one output unit, or a Conv layer's output channel) of the direction is
    rescaled to the norm of the corresponding filter of the weight: d_i <- d_i / ||d_i|| ||w_i||.
    For 1-d (and 0-d) parameters, i.e. biases and normalization scales, ``one_d`` says what to do:
    ``"zero"`` (default) sets the direction to zero, as in Li et al.'s plots ("ignore biasbn");
    ``"copy"`` sets it to the weight itself (their code's alternative); ``"normalize"`` treats
    the whole vector as one filter. Returns tensors shaped, typed and placed like ``params``.
    """
    gen = make_generator(seed)
    out: list[torch.Tensor] = []
    for p in params:
        w = p.detach()
        d = torch.randn(w.shape, generator=gen, dtype=torch.float64)
        w64 = w.to(device="cpu", dtype=torch.float64)
        if w.dim() >= 2:
            rows_d = d.reshape(w.shape[0], -1)
            rows_w = w64.reshape(w.shape[0], -1)
            scale = rows_w.norm(dim=1, keepdim=True) / rows_d.norm(dim=1, keepdim=True)
            d = (rows_d * scale).reshape(w.shape)
        elif one_d == "zero":
            d = torch.zeros_like(d)
        elif one_d == "copy":
            d = w64.clone()
        elif one_d == "normalize":
            d = d / d.norm() * w64.norm()
        else:
            raise ValueError(f"one_d must be 'zero', 'copy' or 'normalize', got {one_d!r}")
        out.append(d.to(device=w.device, dtype=w.dtype))
    return out


def _as_list(direction: Direction, params: Params) -> list[torch.Tensor]:
    if isinstance(direction, torch.Tensor):
        return unflatten(direction.reshape(-1), list(params))
    ds = list(direction)
    if len(ds) != len(params) or any(d.shape != p.shape for d, p in zip(ds, params, strict=True)):
        raise ValueError("direction must have one tensor shaped like each parameter")
    return [d.detach().to(device=p.device, dtype=p.dtype) for d, p in zip(ds, params, strict=True)]


def _surface(
    loss_fn: LossFn,
    params: Params,
    dirs: list[list[torch.Tensor]],
    coords: list[tuple[float, ...]],
) -> np.ndarray:
    """Loss at w + sum_j c_j d_j for each coordinate tuple c in ``coords``."""
    params = list(params)
    w0 = snapshot(params)
    values = np.empty(len(coords))
    with RngGuard(params) as guard:
        try:
            with torch.no_grad():
                for i, c in enumerate(coords):
                    if all(x == 0.0 for x in c):
                        point = w0  # exactly w, whatever the directions hold
                    else:
                        point = [w.clone() for w in w0]
                        for coef, d in zip(c, dirs, strict=True):
                            for pt, dj in zip(point, d, strict=True):
                                # multiply, then add: no fused multiply-add, whose use
                                # depends on memory alignment, so results are reproducible
                                pt.add_(dj * coef)
                    assign(params, point)
                    values[i] = float(evaluate(loss_fn, guard))
        finally:
            assign(params, w0)
    return values


def loss_surface_1d(
    loss_fn: LossFn, params: Params, direction: Direction, alphas: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Losses L(w + alpha d) for each alpha (float64 array, same length as ``alphas``).

    ``direction`` is a list of tensors shaped like ``params`` or a flat vector.
    """
    d = _as_list(direction, params)
    return _surface(loss_fn, params, [d], [(float(a),) for a in alphas])


def loss_surface_2d(
    loss_fn: LossFn,
    params: Params,
    d1: Direction,
    d2: Direction,
    alphas: Sequence[float] | np.ndarray,
    betas: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Losses L(w + alpha d1 + beta d2) as a float64 array of shape (len(alphas), len(betas))."""
    dirs = [_as_list(d1, params), _as_list(d2, params)]
    coords = [(float(a), float(b)) for a in alphas for b in betas]
    return _surface(loss_fn, params, dirs, coords).reshape(len(alphas), len(betas))
