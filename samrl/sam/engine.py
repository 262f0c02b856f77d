"""install(): put the SAM step into a built d3rlpy algorithm from outside.

What install() changes on the algorithm's impl (instance attributes only, d3rlpy untouched):
- each `_compute_*grad` attribute is wrapped so the tape records the call (see tape.py);
- each plain OptimizerWrapper (temperature, alpha, non-SAM networks) gets a `step` that records
  its parameter values around steps taken inside a recorded call, and replays them in pass 2;
- `inner_update` returns the SAM metrics next to the algorithm's own losses;
- each SAMOptimizerWrapper is attached to the tape with an `evaluate` function for pass 2;
- each network's `forward` is wrapped so pass 2 reuses outputs eps cannot change (reuse.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from d3rlpy.optimizers import OptimizerWrapper
from d3rlpy.torch_utility import CudaGraphWrapper
from torch import nn

from samrl.errors import ConfigError
from samrl.networks import network_name
from samrl.rng import RngState
from samrl.sam.factory import register_factory
from samrl.sam.optimizer import EvaluateFn, SAMOptimizerWrapper
from samrl.sam.reuse import Replay, wrap_networks
from samrl.sam.tape import (
    NestedStep,
    RecordedCall,
    Tape,
    backward_disabled,
    global_rng_exclusive,
    primary_loss,
)

_TAPE_ATTR = "_samrl_tape"


def is_installed(algo: Any) -> bool:
    return algo.impl is not None and hasattr(algo.impl, _TAPE_ATTR)


def sam_optimizers(algo: Any) -> dict[str, SAMOptimizerWrapper]:
    """Network name -> SAM optimizer of a built algorithm."""
    modules = algo.impl.modules
    found = {}
    for field in dataclasses.fields(modules):
        value = getattr(modules, field.name)
        if isinstance(value, SAMOptimizerWrapper):
            found[network_name(field.name, algo.config.get_type())] = value
    return found


def install(algo: Any) -> Tape | None:
    """Connect the SAM optimizers of a built algorithm to its gradient calls.

    Call after `build_with_dataset`/`create_impl` and again after `d3rlpy.load_learnable`.
    Returns the tape, or None when the algorithm has no SAM optimizer (nothing is changed).
    """
    register_factory()  # so d3rlpy.load_learnable rebuilds this model's SAM optimizers
    impl = algo.impl
    if impl is None:
        raise ValueError("install() needs a built algorithm: call build_with_dataset first")
    if hasattr(impl, _TAPE_ATTR):
        return getattr(impl, _TAPE_ATTR)
    modules = impl.modules
    optimizers = {
        f.name: getattr(modules, f.name)
        for f in dataclasses.fields(modules)
        if isinstance(getattr(modules, f.name), OptimizerWrapper)
    }
    sam = {name: o for name, o in optimizers.items() if isinstance(o, SAMOptimizerWrapper)}
    if not sam:
        return None
    grad_attrs = [
        name
        for name, value in vars(impl).items()
        if name.startswith("_compute_") and name.endswith("grad") and callable(value)
    ]
    if any(isinstance(getattr(impl, name), CudaGraphWrapper) for name in grad_attrs):
        # CUDA graph replays overwrite their static outputs and capture nested optimizer steps;
        # the two-pass step has not been verified on a GPU, so it is refused rather than guessed.
        raise ConfigError(
            "compile_graph=True on CUDA is not supported with SAM or a sharpness probe; "
            "set algo.params.compile_graph: false",
            key="algo.params.compile_graph",
        )
    tape = Tape()
    for name in grad_attrs:
        setattr(impl, name, tape.record(getattr(impl, name)))
    for optimizer in optimizers.values():
        if not isinstance(optimizer, SAMOptimizerWrapper):
            _make_replayable(optimizer, tape)
    sam_ids = {id(o): frozenset(id(p) for p in o._params) for o in sam.values()}
    wrap_networks(modules, tape, lambda o: sam_ids.get(id(o), frozenset()))
    buffers = _buffers(modules)
    evaluate = _make_evaluate(tape, buffers, _parameters(modules))
    for name, optimizer in sam.items():
        optimizer.attach(tape, network_name(name, algo.config.get_type()), evaluate)
    sam_list = list(sam.values())
    # Record only when some optimizer will measure (a probe every k steps, periodic SAM).
    tape.wanted = lambda: any(o.measures_next_step() for o in sam_list)
    inner_update = impl.inner_update

    def inner_update_with_sharpness(*args: Any, **kwargs: Any) -> dict[str, float]:
        metrics = inner_update(*args, **kwargs)
        metrics.update(tape.pop_metrics())
        return metrics

    impl.inner_update = inner_update_with_sharpness
    setattr(impl, _TAPE_ATTR, tape)
    return tape


def _parameters(modules: Any) -> list[nn.Parameter]:
    """Every parameter of the algorithm's networks and its bare parameters, once each."""
    return _unique(modules, nn.Module.parameters, bare_parameters=True)  # type: ignore[return-value]


def _buffers(modules: Any) -> list[torch.Tensor]:
    """Module buffers (BatchNorm running statistics): pass 2 must not update them again."""
    return _unique(modules, nn.Module.buffers)


def _unique(
    modules: Any,
    tensors_of: Callable[[nn.Module], Iterable[torch.Tensor]],
    *,
    bare_parameters: bool = False,
) -> list[torch.Tensor]:
    """tensors_of(network) over the fields of impl.modules (a network shared by two fields, or
    a tensor shared by two networks, counted once), in first-seen order."""
    seen: dict[int, torch.Tensor] = {}
    for field in dataclasses.fields(modules):
        value = getattr(modules, field.name)
        if isinstance(value, nn.Module):
            tensors: Iterable[torch.Tensor] = tensors_of(value)
        elif bare_parameters and isinstance(value, nn.Parameter):
            tensors = (value,)
        else:
            continue
        for tensor in tensors:
            seen[id(tensor)] = tensor
    return list(seen.values())


def _make_replayable(optimizer: OptimizerWrapper, tape: Tape) -> None:
    """Nested scalar steps: recorded in pass 1, replayed (not re-stepped) in pass 2."""
    original_step = optimizer.step
    params = list(optimizer._params)

    def step(self: OptimizerWrapper) -> None:
        if tape.replaying is not None:
            for i, entry in enumerate(tape.replaying):
                if entry.optimizer is self:
                    _assign(params, tape.replaying.pop(i).after)
                    return
            raise RuntimeError("pass 2 took a nested optimizer step that pass 1 did not take")
        if tape.active is None:
            original_step()
            return
        before = _snapshot(params)
        original_step()
        tape.active.nested.append(NestedStep(self, before, _snapshot(params)))

    optimizer.step = types.MethodType(step, optimizer)  # type: ignore[method-assign]


def _snapshot(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]


def _assign(tensors: list[torch.Tensor], values: list[torch.Tensor]) -> None:
    if tensors:
        with torch.no_grad():
            torch._foreach_copy_(tensors, values)


def _make_evaluate(
    tape: Tape, buffers: list[torch.Tensor], network_params: list[nn.Parameter] | None = None
) -> EvaluateFn:
    """The optimizers' pass 2: the recorded call again at w + eps, everything else as pass 1 saw it.

    network_params: every parameter of the algorithm (frozen in pass 2 unless needed).
    """
    network_params = network_params or []

    def evaluate(
        call: RecordedCall,
        params: list[nn.Parameter],
        eps: list[torch.Tensor],
        *,
        forward_only: bool = False,
    ) -> torch.Tensor:
        nested = _nested_parameters(call)
        # Pass 2 needs gradients only for this optimizer's weights and for the nested scalars
        # the call steps (their backward must run); freezing the rest (e.g. the critic during
        # the actor's pass) skips that work and leaves this optimizer's gradient exact.
        needed = {id(p) for p in params} | {id(p) for p in nested}
        frozen = [p for p in network_params if p.requires_grad and id(p) not in needed]
        # Restored afterwards, bit for bit: torch's RNG as pass 1 left it, the nested scalars,
        # BatchNorm statistics and w (w + eps is pass 2's alone).
        with global_rng_exclusive(), _rng_kept(), _kept(nested), _kept(buffers), _kept(params):
            _start_nested_as_pass_1(call)
            call.rng_before.restore()  # the same random draws as pass 1
            with _replaying(tape, call, needed, forward_only), _frozen(frozen):
                with torch.no_grad():
                    torch._foreach_add_(params, eps)
                return _run(call, forward_only)

    return evaluate


def _nested_parameters(call: RecordedCall) -> list[torch.Tensor]:
    """The parameters of the nested scalar optimizers (temperature, alpha) the call stepped."""
    owners = {id(n.optimizer): list(n.optimizer._params) for n in call.nested}
    return [p for params in owners.values() for p in params]


def _start_nested_as_pass_1(call: RecordedCall) -> None:
    """Nested scalars start pass 2 where pass 1 found them (before each one's first step)."""
    first_seen: set[int] = set()
    for entry in call.nested:
        if id(entry.optimizer) not in first_seen:
            first_seen.add(id(entry.optimizer))
            _assign(list(entry.optimizer._params), entry.before)


@contextlib.contextmanager
def _kept(tensors: list[torch.Tensor]) -> Iterator[None]:
    """`tensors` put back to their values on entry, bit for bit."""
    saved = _snapshot(tensors)
    try:
        yield
    finally:
        _assign(tensors, saved)


@contextlib.contextmanager
def _rng_kept() -> Iterator[None]:
    """torch's RNG (CPU and CUDA) put back as pass 1 left it."""
    rng_after = RngState.capture()
    try:
        yield
    finally:
        rng_after.restore()


@contextlib.contextmanager
def _replaying(
    tape: Tape, call: RecordedCall, changed: set[int], forward_only: bool
) -> Iterator[None]:
    """The tape in pass 2: nested steps replayed, not taken; output reuse (reuse.py, its one
    seam) for networks owning none of the `changed` parameters; a probe's forward-only mode."""
    tape.reuse_replay = Replay(call.saved_calls, changed)
    tape.replaying = list(call.nested)
    tape.forward_only = forward_only
    try:
        yield
    finally:
        tape.replaying = None
        tape.reuse_replay = None
        tape.forward_only = False


@contextlib.contextmanager
def _frozen(params: list[nn.Parameter]) -> Iterator[None]:
    """`params` without gradients for the duration (pass 2 needs none for them)."""
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _run(call: RecordedCall, forward_only: bool) -> torch.Tensor:
    """The recorded call's loss; forward_only (a probe needs L(w + eps), not its gradient):
    no graph and no backward."""
    if forward_only:
        with torch.no_grad(), backward_disabled():
            return primary_loss(call.func(*call.args, **call.kwargs))
    return primary_loss(call.func(*call.args, **call.kwargs))
