"""The SAM/ASAM ascent direction eps and the gradient norm, on one optimizer's parameters."""

from __future__ import annotations

import torch

# Guards the division when the gradient vanishes; with rho = 0 eps is exactly zero anyway.
NORM_EPS = 1e-12


def global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


def ascent_direction(
    params: list[torch.Tensor], grads: list[torch.Tensor], rho: float, adaptive: bool
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """eps = rho g/||g|| (SAM) or rho T^2 g/||T g|| with T = |w| (ASAM); returns (eps, ||g||)."""
    grad_norm = global_norm(grads)
    if adaptive:
        scaled = [p.detach().abs() * g for p, g in zip(params, grads, strict=True)]
        scale = rho / (global_norm(scaled) + NORM_EPS)
        eps = [p.detach().abs() * s * scale for p, s in zip(params, scaled, strict=True)]
    else:
        scale = rho / (grad_norm + NORM_EPS)
        eps = [g * scale for g in grads]
    return eps, grad_norm


# A sum over one whole large tensor (torch.dot, .sum(); more than torch's grain of 32768
# elements) is split between threads, so its bits depend on the thread count, which
# train.threads auto changes during a run. Summed in rows of _ROW elements instead, the work is
# split by output row (each row summed alike by any thread) and the row sums are few.
_ROW = 4096


def dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """sum_i a_i . b_i, the same bits with any torch thread count."""
    return torch.stack([_flat_dot(x, y) for x, y in zip(a, b, strict=True)]).sum()


def _flat_dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if x.numel() <= _ROW:
        return torch.dot(x.reshape(-1), y.reshape(-1))
    products = (x * y).reshape(-1)
    padding = -products.numel() % _ROW  # zeros: the sum is unchanged
    if padding:
        products = torch.nn.functional.pad(products, (0, padding))
    return products.view(-1, _ROW).sum(dim=1).sum()


def orthogonal_part(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
    """a - (a.b / ||b||^2) b: the component of a orthogonal to b (a itself when b vanishes)."""
    coefficient = dot(a, b) / (dot(b, b) + NORM_EPS)
    # foreach ops with a tensor scalar: no host sync, a few fused kernels instead of a loop
    return torch._foreach_sub(a, torch._foreach_mul(b, coefficient))
