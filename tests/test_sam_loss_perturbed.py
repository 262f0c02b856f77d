"""The logged L(w + eps) equals a recomputation by hand, independent of the engine.

For one update of a SAM algorithm A, a plain copy R (same config, never installed, so it runs
d3rlpy's own code only) receives A's exact state at the moment A's gradient call starts, with
the torch RNG state and the minibatch of that call. On R, by hand: g from d3rlpy's own gradient
function, eps = rho g/||g|| over the parameters of that network's torch optimizer, w + eps, the
nested scalar (alpha, temperature) set to the value its pass-1 step produced, the same RNG
state, and the algorithm's loss function on the same minibatch.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import build, facts_of, optimizers, sample_batch
from d3rlpy.models.torch import get_parameter
from torch import nn

from samrl.sam import SAMFactory

RHO = 0.05


@dataclasses.dataclass(frozen=True)
class Case:
    algo: str
    field: str  # optimizer field of the SAM network checked
    net: str  # metric prefix
    grad_fn: str  # d3rlpy's compute_*_grad method that starts the network's update
    loss: Callable[[Any, Any], torch.Tensor]  # (impl, batch) -> the loss it backpropagates
    nested: dict[str, str] = dataclasses.field(default_factory=dict)  # method -> scalar field
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    warmup: int = 3  # updates before the checked one


def _critic_loss(impl: Any, batch: Any) -> torch.Tensor:
    return impl.compute_critic_loss(batch, impl.compute_target(batch)).critic_loss


def _sac_actor_loss(impl: Any, batch: Any) -> torch.Tensor:
    return impl.compute_actor_loss(batch, impl.modules.policy(batch.observations)).actor_loss


def _dqn_loss(impl: Any, batch: Any) -> torch.Tensor:
    return impl.compute_loss(batch, impl.compute_target(batch)).loss


def _bc_loss(impl: Any, batch: Any) -> torch.Tensor:
    return impl.compute_loss(batch.observations, batch.actions).loss


CASES = [
    Case("cql", "critic_optim", "critic", "compute_critic_grad", _critic_loss,
         nested={"update_alpha": "log_alpha"}),
    Case("sac", "actor_optim", "actor", "compute_actor_grad", _sac_actor_loss,
         nested={"update_temp": "log_temp"}),
    Case("cql", "actor_optim", "actor", "compute_actor_grad", _sac_actor_loss,
         nested={"update_temp": "log_temp"}),
    Case("td3_plus_bc", "critic_optim", "critic", "compute_critic_grad", _critic_loss),
    # the actor updates on even grad steps; its loss renormalizes by |Q| at w + eps
    Case("td3_plus_bc", "actor_optim", "actor", "compute_actor_grad", _sac_actor_loss, warmup=4),
    Case("dqn", "optim", "q", "compute_grad", _dqn_loss),
    Case("bc", "optim", "policy", "compute_imitator_grad", _bc_loss),
    Case("bc", "optim", "policy", "compute_imitator_grad", _bc_loss,
         overrides={"policy_type": "stochastic"}),
]  # fmt: skip


def _capture(algo: Any) -> dict[str, Any]:
    """Deep copies of every module's and optimizer's state, and every submodule's mode."""
    modules = algo.impl.modules
    out: dict[str, Any] = {}
    for field in dataclasses.fields(modules):
        value = getattr(modules, field.name)
        if isinstance(value, nn.Module):
            out[field.name] = (
                copy.deepcopy(value.state_dict()),
                [m.training for m in value.modules()],
            )
    for name, optimizer in optimizers(algo).items():
        out[name] = copy.deepcopy(dict(optimizer.state_dict()))
    return out


def _restore(algo: Any, state: dict[str, Any]) -> None:
    modules = algo.impl.modules
    for field in dataclasses.fields(modules):
        value = getattr(modules, field.name)
        if isinstance(value, nn.Module):
            weights, modes = state[field.name]
            value.load_state_dict(copy.deepcopy(weights))
            for module, training in zip(value.modules(), modes, strict=True):
                module.training = training
    for name, optimizer in optimizers(algo).items():
        # OptimizerWrapper.load_state_dict, not the SAM wrapper's: R is plain d3rlpy
        optimizer._optim.load_state_dict(copy.deepcopy(state[name]["optim"]))


def _case_id(case: Case) -> str:
    return "-".join([case.algo, case.net, *map(str, case.overrides.values())])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_logged_perturbed_loss_equals_a_recomputation_by_hand(case: Case) -> None:
    def sam(net: str) -> SAMFactory:
        return SAMFactory(rho=RHO)

    algo, dataset = build(case.algo, sam, **case.overrides)
    ref, _ = build(case.algo, sam, installed=False, **case.overrides)
    facts = facts_of(case.algo)
    torch.manual_seed(3)
    for _ in range(case.warmup):  # non-trivial Adam moments, alpha and temperature
        algo.update(sample_batch(dataset, facts))

    # Intercept the (recorded) gradient call on A: state, RNG and minibatch as it starts.
    seen: dict[str, Any] = {}
    attr = f"_{case.grad_fn}"
    recorded = getattr(algo.impl, attr)

    def spy(batch: Any) -> Any:
        if not seen:
            seen.update(batch=batch, rng=torch.get_rng_state(), state=_capture(algo))
        return recorded(batch)

    setattr(algo.impl, attr, spy)
    metrics = algo.update(sample_batch(dataset, facts))
    setattr(algo.impl, attr, recorded)
    assert seen, f"{attr} was not called"
    batch, rng = seen["batch"], seen["rng"]

    # Pass 1 on R: g(w) by d3rlpy's own code; the nested scalar's value after its step.
    _restore(ref, seen["state"])
    torch.set_rng_state(rng)
    getattr(ref.impl, case.grad_fn)(batch)
    after = {
        field: get_parameter(getattr(ref.impl.modules, field)).detach().clone()
        for field in case.nested.values()
    }
    params = [p for g in optimizers(ref)[case.field].optim.param_groups for p in g["params"]]
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
    grad_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))

    # Pass 2 on R, by hand.
    _restore(ref, seen["state"])
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p.add_(RHO * g / grad_norm.float())
    for method, field in case.nested.items():

        def replay(*_: Any, field: str = field) -> torch.Tensor:
            with torch.no_grad():
                get_parameter(getattr(ref.impl.modules, field)).copy_(after[field])
            return torch.zeros(())

        setattr(ref.impl, method, replay)
    torch.set_rng_state(rng)
    with torch.no_grad():
        expected = float(case.loss(ref.impl, batch))

    logged = metrics[f"{case.net}_loss_perturbed"]
    assert logged == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert metrics[f"{case.net}_grad_norm"] == pytest.approx(float(grad_norm), rel=1e-5)
    # and the sharpness is L(w + eps) - L(w) with L(w) the loss d3rlpy reported
    assert metrics[f"{case.net}_sharpness"] != 0.0
