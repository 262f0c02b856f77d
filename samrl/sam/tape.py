"""Recording of the algorithm's own gradient calls, so a SAM step can replay them exactly.

d3rlpy 2.8.1 algorithms compute gradients with `loss = self._compute_X_grad(batch)` and then call
`self._modules.X_optim.step()`. The tape remembers the last such call (function, arguments, RNG
state before it, the loss it returned, which optimizers it zero-graded and which nested scalar
optimizers stepped inside it) so the optimizer's `step()` can evaluate the same loss at w + eps.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

from samrl.rng import RngState


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
    # outermost network calls of pass 1, for pass 2 to reuse (reuse.py)
    saved_calls: list[Any] = dataclasses.field(default_factory=list)


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


# Whether Tensor.backward is switched off in the current thread/asyncio task. A ContextVar is
# per thread (a new thread starts from the default) and per context, so one caller's switch
# never reaches another thread's training.
_BACKWARD_OFF: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "samrl_backward_off", default=False
)
_SWITCH_LOCK = threading.Lock()


def _install_backward_switch() -> None:
    """Replace torch.Tensor.backward, once per process, by a wrapper that asks _BACKWARD_OFF.

    This is process-wide state: every tensor's backward goes through the wrapper from then on.
    With the switch off (the default in every context) it calls the original backward with the
    same arguments, so nothing changes for code that never enters backward_disabled().
    """
    with _SWITCH_LOCK:
        if getattr(torch.Tensor.backward, "_samrl_switch", False):
            return
        original = torch.Tensor.backward

        @functools.wraps(original)
        def backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> None:
            if _BACKWARD_OFF.get():
                return None  # no gradient is computed or written in this context
            return original(self, *args, **kwargs)

        backward._samrl_switch = True  # type: ignore[attr-defined]
        torch.Tensor.backward = backward  # type: ignore[method-assign]


@contextlib.contextmanager
def backward_disabled() -> Iterator[None]:
    """Run an algorithm's gradient function for its loss only (d3rlpy calls backward inside).

    Only Tensor.backward calls made in the current thread/context are skipped; other threads
    keep computing gradients. Nesting and out-of-order exits of different threads are safe
    (each restores its own context's previous value).
    """
    _install_backward_switch()
    token = _BACKWARD_OFF.set(True)
    try:
        yield
    finally:
        _BACKWARD_OFF.reset(token)


# The engine replays torch's *global* RNG state (samrl.rng.RngState): pass 2 restores the state
# pass 1 started from, then puts back the state pass 1 left. Two algorithms training at once in
# one process would draw from, and rewind, the same generator, so samrl assumes ONE training
# algorithm per process at a time (the CLI, sweeps, Slurm and Ray all run one run per process).
# This is enforced where it can be seen: a recorded call or a pass 2 running in one thread while
# another thread is inside one raises instead of silently mixing their random numbers.
_OWNER_LOCK = threading.Lock()
_owner: list[Any] = [None, 0]  # thread id inside a recorded call / pass 2, nesting depth


@contextlib.contextmanager
def global_rng_exclusive() -> Iterator[None]:
    """Claim torch's global RNG for this thread's recorded call or pass 2 (re-entrant)."""
    me = threading.get_ident()
    with _OWNER_LOCK:
        if _owner[0] not in (None, me):
            raise RuntimeError(
                "samrl's SAM engine replays torch's global RNG, so only one algorithm may "
                "train with it per process at a time; another thread is inside a SAM step "
                "(run concurrent trainings in separate processes)"
            )
        _owner[0] = me
        _owner[1] += 1
    try:
        yield
    finally:
        with _OWNER_LOCK:
            _owner[1] -= 1
            if _owner[1] == 0:
                _owner[0] = None


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
        # Pass 2 reuses outputs of network calls eps cannot change (reuse.py); False turns it
        # off (tests compare both ways).
        self.reuse_outputs = True
        self.reuse_replay: Any = None  # reuse.Replay while pass 2 runs
        self.depth = 0  # wrapped network calls in progress (only outermost ones are counted)

    def record(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if self.replaying is not None or self.active is not None:
                return func(*args, **kwargs)
            if not self.wanted():
                self.last = None
                return func(*args, **kwargs)
            with global_rng_exclusive():
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
