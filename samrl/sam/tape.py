"""Recording of the algorithm's own gradient calls, so a SAM step can replay them exactly.

d3rlpy 2.8.1 algorithms compute gradients with `loss = self._compute_X_grad(batch)` and then call
`self._modules.X_optim.step()`. The tape remembers the last such call (function, arguments, RNG
state before it, the loss it returned, which optimizers it zero-graded and which nested scalar
optimizers stepped inside it) so the optimizer's `step()` can evaluate the same loss at w + eps.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch


@dataclasses.dataclass
class RngState:
    cpu: torch.Tensor
    cuda: list[torch.Tensor] | None

    @staticmethod
    def capture() -> RngState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return RngState(torch.get_rng_state(), cuda)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


@dataclasses.dataclass
class NestedStep:
    """One step of a nested scalar optimizer (temperature, alpha) seen inside a recorded call."""

    optimizer: Any
    before: list[torch.Tensor]
    after: list[torch.Tensor]


@dataclasses.dataclass
class RecordedCall:
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    rng_before: RngState
    loss: torch.Tensor | None = None
    zeroed: list[Any] = dataclasses.field(default_factory=list)
    nested: list[NestedStep] = dataclasses.field(default_factory=list)


def loss_scalar(output: Any) -> torch.Tensor:
    """The scalar that a d3rlpy `compute_*_grad` backpropagated, graph intact.

    Dataclass losses put it in their first field; dict losses under "loss" (DiscreteSAC's actor
    dict starts with temp_loss); some transformer impls return the tensor itself.
    """
    if isinstance(output, torch.Tensor):
        value = output
    elif isinstance(output, dict):
        value = output["loss"] if "loss" in output else next(iter(output.values()))
    elif dataclasses.is_dataclass(output):
        value = getattr(output, dataclasses.fields(output)[0].name)
    else:
        raise TypeError(f"cannot find the loss in a {type(output).__name__}")
    return value.reshape(())


def primary_loss(output: Any) -> torch.Tensor:
    """loss_scalar as a detached copy (CUDA graph outputs are overwritten by the next replay)."""
    return loss_scalar(output).detach().clone()


def _no_backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> None:
    """Stands in for Tensor.backward: no gradient is computed or written."""


@contextlib.contextmanager
def backward_disabled() -> Iterator[None]:
    """Run an algorithm's gradient function for its loss only (d3rlpy calls backward inside)."""
    backward = torch.Tensor.backward
    torch.Tensor.backward = _no_backward  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.backward = backward  # type: ignore[method-assign]


class Tape:
    """Per-algorithm recorder shared by the wrapped gradient functions and the SAM optimizers."""

    def __init__(self) -> None:
        self.active: RecordedCall | None = None
        self.last: RecordedCall | None = None
        self.replaying: list[NestedStep] | None = None
        self.forward_only = False  # pass 2 of a probe: no zero_grad, no backward
        # Whether the next gradient calls must be recorded (some optimizer measures next step).
        self.wanted: Callable[[], bool] = lambda: True
        self.metrics: dict[str, list[torch.Tensor]] = {}

    def record(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if self.replaying is not None or self.active is not None:
                return func(*args, **kwargs)
            if not self.wanted():
                self.last = None
                return func(*args, **kwargs)
            call = RecordedCall(func, args, kwargs, RngState.capture())
            self.active = call
            try:
                output = func(*args, **kwargs)
            finally:
                self.active = None
            call.loss = primary_loss(output)
            self.last = call
            return output

        recorded.__wrapped__ = func  # type: ignore[attr-defined]
        return recorded

    def add_metric(self, name: str, value: torch.Tensor) -> None:
        self.metrics.setdefault(name, []).append(value)

    def pop_metrics(self) -> dict[str, float]:
        """Metrics of the update that just ended, averaged over the steps that reported them."""
        out = {k: float(torch.stack(v).mean()) for k, v in self.metrics.items()}
        self.metrics.clear()
        return out
