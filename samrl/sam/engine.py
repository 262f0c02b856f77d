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

import dataclasses
import types
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
    seen: dict[int, nn.Parameter] = {}
    for field in dataclasses.fields(modules):
        value = getattr(modules, field.name)
        if isinstance(value, nn.Module):
            for param in value.parameters():
                seen[id(param)] = param
        elif isinstance(value, nn.Parameter):
            seen[id(value)] = value
    return list(seen.values())


def _buffers(modules: Any) -> list[torch.Tensor]:
    """Module buffers (BatchNorm running statistics): pass 2 must not update them again."""
    seen: dict[int, torch.Tensor] = {}
    for field in dataclasses.fields(modules):
        value = getattr(modules, field.name)
        if isinstance(value, nn.Module):
            for buffer in value.buffers():
                seen[id(buffer)] = buffer
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
    """network_params: every parameter of the algorithm (frozen in pass 2 unless needed)."""
    network_params = network_params or []

    def evaluate(
        call: RecordedCall,
        params: list[nn.Parameter],
        eps: list[torch.Tensor],
        *,
        forward_only: bool = False,
    ) -> torch.Tensor:
        with global_rng_exclusive():
            return _evaluate(call, params, eps, forward_only)

    def _evaluate(
        call: RecordedCall,
        params: list[nn.Parameter],
        eps: list[torch.Tensor],
        forward_only: bool,
    ) -> torch.Tensor:
        weights = _snapshot(params)
        saved_buffers = _snapshot(buffers)
        nested_params = {id(n.optimizer): list(n.optimizer._params) for n in call.nested}
        nested_now = {k: _snapshot(v) for k, v in nested_params.items()}
        rng_after = RngState.capture()
        # Nested scalars start pass 2 where pass 1 found them.
        first_seen: set[int] = set()
        for entry in call.nested:
            if id(entry.optimizer) not in first_seen:
                first_seen.add(id(entry.optimizer))
                _assign(nested_params[id(entry.optimizer)], entry.before)
        # Pass 2 needs gradients only for this optimizer's weights and for the nested scalars
        # the call steps (their backward must run); freezing the rest (e.g. the critic during
        # the actor's pass) skips that work and leaves this optimizer's gradient exact.
        needed = {id(p) for p in params} | {id(p) for ps in nested_params.values() for p in ps}
        frozen = [p for p in network_params if p.requires_grad and id(p) not in needed]
        call.rng_before.restore()
        # the parameters that differ from pass 1: networks owning none of them are reused
        tape.reuse_replay = Replay(call.saved_calls, needed)
        tape.replaying = list(call.nested)
        tape.forward_only = forward_only
        try:
            for p in frozen:
                p.requires_grad_(False)
            with torch.no_grad():
                torch._foreach_add_(params, eps)
            if forward_only:  # a probe needs L(w + eps), not its gradient
                with torch.no_grad(), backward_disabled():
                    loss = primary_loss(call.func(*call.args, **call.kwargs))
            else:
                loss = primary_loss(call.func(*call.args, **call.kwargs))
        finally:
            tape.replaying = None
            tape.reuse_replay = None
            tape.forward_only = False
            for p in frozen:
                p.requires_grad_(True)
            _assign(params, weights)
            _assign(buffers, saved_buffers)
            for key, values in nested_now.items():
                _assign(nested_params[key], values)
            rng_after.restore()
        return loss

    return evaluate
