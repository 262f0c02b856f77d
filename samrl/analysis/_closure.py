"""Helpers shared by the curvature, landscape and sharpness functions.

They operate on a loss closure ``loss_fn() -> scalar tensor`` and the list of parameters it
reads. Nothing here keeps global state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

import torch

LossFn = Callable[[], torch.Tensor]
Params = Sequence[torch.nn.Parameter]


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate tensors into one 1-d tensor (row-major order of each tensor)."""
    if len(tensors) == 0:
        return torch.zeros(0)
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vec: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split a 1-d tensor into tensors shaped (and typed/placed) like ``like``."""
    total = sum(t.numel() for t in like)
    if vec.dim() != 1 or vec.numel() != total:
        raise ValueError(
            f"expected a 1-d tensor with {total} elements, got shape {tuple(vec.shape)}"
        )
    out: list[torch.Tensor] = []
    offset = 0
    for t in like:
        n = t.numel()
        out.append(vec[offset : offset + n].view(t.shape).to(dtype=t.dtype, device=t.device))
        offset += n
    return out


def num_params(params: Params) -> int:
    """Total number of scalar entries in ``params``."""
    return sum(p.numel() for p in params)


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``; draws are made on CPU and then moved, so results do
    not depend on the parameters' device."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    return gen


def snapshot(params: Params) -> list[torch.Tensor]:
    """Exact copies of the parameter values."""
    return [p.detach().clone() for p in params]


def assign(params: Params, values: Sequence[torch.Tensor]) -> None:
    """Write ``values`` into the parameters in place.

    Goes through ``.data`` on purpose: the version counters of the parameters stay untouched, so
    a graph the caller built before calling us (with the same values, restored bitwise) stays
    usable for backward.
    """
    for p, v in zip(params, values, strict=True):
        p.data.copy_(v)


class RngGuard:
    """Context manager that freezes the global torch RNG for the duration of an analysis.

    On entry it records the CPU RNG state and the CUDA RNG state of every CUDA device the
    parameters live on; ``reset()`` puts those states back (called before every evaluation of
    the loss closure, so a closure that draws random numbers sees the same draws every time);
    on exit the states are restored, so the caller's training RNG is unchanged.
    """

    def __init__(self, params: Params) -> None:
        self._cuda_devices = sorted(
            {p.device.index or 0 for p in params if p.device.type == "cuda"}
        )
        self._cpu_state: torch.Tensor | None = None
        self._cuda_states: list[torch.Tensor] = []

    def __enter__(self) -> RngGuard:
        self._cpu_state = torch.get_rng_state()
        self._cuda_states = [torch.cuda.get_rng_state(d) for d in self._cuda_devices]
        return self

    def reset(self) -> None:
        assert self._cpu_state is not None, "RngGuard used outside its with-block"
        torch.set_rng_state(self._cpu_state)
        for d, s in zip(self._cuda_devices, self._cuda_states, strict=True):
            torch.cuda.set_rng_state(s, d)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.reset()


def evaluate(loss_fn: LossFn, guard: RngGuard) -> torch.Tensor:
    """Call the closure from the frozen RNG state and check it returns a scalar."""
    guard.reset()
    loss = loss_fn()
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn must return a scalar tensor")
    return loss.reshape(())


def gradient(
    loss: torch.Tensor, params: Params, *, create_graph: bool = False
) -> list[torch.Tensor]:
    """d loss / d params; parameters the loss does not depend on get zeros."""
    if not loss.requires_grad:
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(loss, list(params), create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
