"""Pass 2 reuses the outputs of network calls that eps cannot change.

Pass 2 replays the recorded gradient call at w + eps. Some of the networks it calls do not
depend on the perturbed weights at all: target networks, the policy inside a critic loss (CQL's
importance samples, TD3's target action), any network of another optimizer. Their outputs in
pass 2 are the pass-1 outputs, bit for bit, as long as
  - the network owns no perturbed parameter and no parameter a nested optimizer steps in the
    call (those are the only parameters that differ between the passes),
  - it is called with equal inputs (compared by value) none of which requires grad (so its
    pass-2 output would carry no gradient: every parameter it owns is frozen in pass 2),
  - its forward draws no random numbers (the RNG state is compared around the pass-1 call),
  - it is in the same train/eval mode and has no buffers (BatchNorm statistics change in pass 1).
Each network of the algorithm (the fields of impl.modules; the members of a ModuleList field)
gets a `forward` wrapper (an instance attribute) that, while the tape records, saves detached
copies of the inputs and outputs of such calls in call order, and while pass 2 replays that
call, hands back a copy of the saved output instead of running the network when the k-th call
is the same network with equal inputs. A call that differs in any way runs normally, and once
the order differs (another network at position k) nothing more is reused in that pass.
Calls nested inside a wrapped network's forward are part of it and are not counted.
tests/test_sam_reuse.py proves SAM with reuse bitwise equal to SAM without, for every algorithm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from samrl.rng import RngState
from samrl.rng import RngState
from samrl.sam.tape import Tape


class _NotCopyable(Exception):
    pass


@dataclasses.dataclass
class SavedCall:
    """One outermost network call of pass 1 (output None: not reusable)."""

    module: nn.Module
    inputs: Any = None
    output: Any = None
    training: bool = True


@dataclasses.dataclass
class Replay:
    """Where pass 2 stands in the saved calls, and which parameter ids differ from pass 1."""

    saved: list[SavedCall]
    changed: set[int]
    index: int = 0
    diverged: bool = False
    reused: int = 0


def wrap_networks(modules: Any, tape: Tape, sam_param_ids: Callable[[Any], frozenset[int]]) -> None:
    """Give every network of `modules` (d3rlpy's impl.modules) the reusing forward wrapper.

    sam_param_ids(optimizer) -> ids of a SAM optimizer's parameters (empty for other ones).
    """
    for field in dataclasses.fields(modules):
        value = getattr(modules, field.name)
        if isinstance(value, nn.ModuleList):
            for member in value:
                _wrap(member, tape, sam_param_ids)
        elif isinstance(value, nn.Module) and any(True for _ in value.parameters()):
            _wrap(value, tape, sam_param_ids)


def _wrap(module: nn.Module, tape: Tape, sam_param_ids: Callable[[Any], frozenset[int]]) -> None:
    if "forward" in vars(module):  # already wrapped (a network shared by two fields)
        return
    forward = module.forward
    own = frozenset(id(p) for p in module.parameters())
    has_buffers = any(True for _ in module.buffers())

    def reusing_forward(*args: Any, **kwargs: Any) -> Any:
        active, replay = tape.active, tape.reuse_replay
        if tape.depth > 0 or (active is None and replay is None) or not tape.reuse_outputs:
            return forward(*args, **kwargs)
        tape.depth += 1
        try:
            if replay is not None and tape.replaying is not None:
                return _replayed(replay, module, own, forward, args, kwargs)
            if active is not None and tape.replaying is None:
                return _recorded(
                    active, module, own, has_buffers, sam_param_ids, forward, args, kwargs
                )
            return forward(*args, **kwargs)
        finally:
            tape.depth -= 1

    module.forward = reusing_forward  # type: ignore[method-assign]


def _recorded(
    call: Any,
    module: nn.Module,
    own: frozenset[int],
    has_buffers: bool,
    sam_param_ids: Callable[[Any], frozenset[int]],
    forward: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    entry = SavedCall(module, training=module.training)
    call.saved_calls.append(entry)
    eligible = (
        not has_buffers
        and not _requires_grad((args, kwargs))
        and all(own.isdisjoint(sam_param_ids(o)) for o in call.zeroed)
    )
    if not eligible:
        return forward(*args, **kwargs)
    rng = RngState.capture()
    output = forward(*args, **kwargs)
    if not rng.same_as(RngState.capture()):
        return output  # the network drew random numbers: pass 2 must run it
    try:
        entry.inputs = _copy((args, kwargs))
        entry.output = _copy(output)
    except _NotCopyable:
        entry.inputs = entry.output = None
    return output


def _replayed(
    replay: Replay,
    module: nn.Module,
    own: frozenset[int],
    forward: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    k = replay.index
    replay.index += 1
    if replay.diverged or k >= len(replay.saved) or replay.saved[k].module is not module:
        replay.diverged = True
        return forward(*args, **kwargs)
    entry = replay.saved[k]
    if (
        entry.output is None
        or entry.training != module.training
        or not own.isdisjoint(replay.changed)
        or _requires_grad((args, kwargs))
        or not _equal((args, kwargs), entry.inputs)
    ):
        return forward(*args, **kwargs)
    replay.reused += 1
    return _copy(entry.output)


def _requires_grad(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.requires_grad
    if isinstance(value, list | tuple):
        return any(_requires_grad(v) for v in value)
    if isinstance(value, dict):
        return any(_requires_grad(v) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_requires_grad(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def _copy(value: Any) -> Any:
    """A detached copy of tensors inside tuples, lists, dicts and dataclasses."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        items = [_copy(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        if not all(f.init for f in fields):
            raise _NotCopyable
        return dataclasses.replace(value, **{f.name: _copy(getattr(value, f.name)) for f in fields})
    raise _NotCopyable


def _equal(a: Any, b: Any) -> bool:
    """Same structure, and tensors of equal shape, dtype, device and values."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and a.device == b.device
            and torch.equal(a, b)
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    try:
        return bool(a == b)
    except Exception:  # an object without a usable ==: treat as different
        return False
