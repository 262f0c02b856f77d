"""network_loss_fn: the loss of a real algorithm's network as a pure closure, tied to the
algorithm's own gradient call and to the SAM engine's sharpness."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from conftest import build, facts_of, optimizers
from d3rlpy.models.torch.parameters import get_parameter

from samrl.analysis.curvature import HessianOperator, top_eigenvalues
from samrl.analysis.landscape import filter_normalized_direction, loss_surface_1d
from samrl.analysis.network_loss import (
    evaluation_batch,
    evaluation_batches,
    network_loss_fn,
    networks_of,
    to_torch_batch,
)
from samrl.analysis.worst_case import worst_case_sharpness
from samrl.errors import SamrlError
from samrl.sam import SAMFactory
from samrl.sam.tape import RngState


def _state(algo: Any) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of every module, and every optimizer's parameters' .grad."""
    out: dict[str, torch.Tensor] = {}
    modules = algo.impl.modules
    for field in dataclasses.fields(modules):
        value = getattr(modules, field.name)
        if isinstance(value, torch.nn.Module):
            for k, v in value.state_dict().items():
                out[f"{field.name}.{k}"] = v.detach().clone()
    for name, opt in optimizers(algo).items():
        for i, p in enumerate(opt._params):
            if p.grad is not None:
                out[f"{name}.grad{i}"] = p.grad.detach().clone()
    return out


def _modes(algo: Any) -> list[bool]:
    modules = algo.impl.modules
    return [
        m.training
        for f in dataclasses.fields(modules)
        if isinstance(getattr(modules, f.name), torch.nn.Module)
        for m in getattr(modules, f.name).modules()
    ]


@pytest.mark.parametrize(
    "name", ["sac", "cql", "td3_plus_bc", "bear", "dqn", "bc", "iql", "decision_transformer"]
)
def test_loss_fn_is_pure_and_repeatable(name: str) -> None:
    algo, dataset = build(name)
    if facts_of(name).transformer:
        algo.update(dataset.sample_trajectory_batch(16, length=4))
    else:
        algo.update(dataset.sample_transition_batch(16))  # .grad and optimizer state exist
    batch = evaluation_batch(algo, dataset, 64, seed=3)
    algo.impl.modules.set_eval()  # as after an evaluation: must come back so
    for net in networks_of(algo):
        before, modes = _state(algo), _modes(algo)
        rng = torch.get_rng_state()
        loss_fn, params = network_loss_fn(algo, net, batch, seed=1)
        a, b = loss_fn(), loss_fn()
        assert a.requires_grad and a.dim() == 0
        assert torch.equal(a, b), net
        assert torch.equal(torch.get_rng_state(), rng)
        after = _state(algo)
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before), net  # temp/alpha too
        assert _modes(algo) == modes
        # a graph that survives for second derivatives
        g = torch.autograd.grad(a, params, create_graph=True, allow_unused=True)
        assert any(x is not None and x.requires_grad for x in g)


def _own_grad_call(algo: Any, net: str, batch: Any, state: RngState) -> tuple[float, list]:
    """The algorithm's own compute_X_grad at RNG `state`: its loss and the .grad it leaves."""
    impl = algo.impl
    attr = {"q": "compute_grad"}.get(net, f"compute_{net}_grad")
    if not hasattr(impl, attr):
        attr = "compute_imitator_grad"
    impl.modules.set_train()
    if net == "actor" and hasattr(impl.modules, "q_funcs"):
        impl.modules.q_funcs.eval()
    state.restore()
    out = getattr(impl, attr)(batch)
    value = out[0] if isinstance(out, tuple) else out
    if isinstance(value, dict):
        value = value["loss"]
    elif dataclasses.is_dataclass(value):
        value = getattr(value, dataclasses.fields(value)[0].name)
    params = list(networks_of(algo)[net]._params)
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]
    return float(value), grads


@pytest.mark.parametrize(
    ("name", "net", "overrides"),
    [
        ("sac", "critic", {}),
        ("sac", "actor", {"temp_learning_rate": 0.0}),  # no nested temp step to differ by
        ("cql", "critic", {"alpha_learning_rate": 0.0}),
        ("td3_plus_bc", "critic", {}),  # target smoothing noise
        ("td3_plus_bc", "actor", {}),
        ("dqn", "q", {}),
        ("bc", "policy", {}),
        ("bcq", "imitator", {}),  # VAE noise
    ],
)
def test_value_and_gradient_equal_the_algorithms_own(
    name: str, net: str, overrides: dict[str, Any]
) -> None:
    algo, dataset = build(name, **overrides)
    batch = evaluation_batch(algo, dataset, 32, seed=0)
    state = RngState.capture()
    loss_fn, params = network_loss_fn(algo, net, batch, rng_state=state)
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
    value, own_grads = _own_grad_call(algo, net, batch, state)
    assert float(loss) == value
    for g, h in zip(grads, own_grads, strict=True):
        torch.testing.assert_close(g, h, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "overrides"), [("sac", {}), ("cql", {"alpha_learning_rate": 0})])
def test_critic_value_equals_the_loss_update_reports(name: str, overrides: dict) -> None:
    algo, dataset = build(name, **overrides)
    np.random.seed(5)
    numpy_batch = dataset.sample_transition_batch(16)
    state = RngState.capture()
    loss_fn, _ = network_loss_fn(algo, "critic", to_torch_batch(algo, numpy_batch), rng_state=state)
    expected = float(loss_fn())
    state.restore()
    metrics = algo.update(numpy_batch)
    assert metrics["critic_loss"] == expected


def test_scalar_temperature_stays_while_its_optimizer_would_step() -> None:
    algo, dataset = build("cql")
    modules = algo.impl.modules
    temp, alpha = get_parameter(modules.log_temp).clone(), get_parameter(modules.log_alpha).clone()
    batch = evaluation_batch(algo, dataset, 32, seed=0)
    for net in ("critic", "actor"):
        network_loss_fn(algo, net, batch)[0]()
    assert torch.equal(get_parameter(modules.log_temp), temp)
    assert torch.equal(get_parameter(modules.log_alpha), alpha)


def test_unknown_network_and_scalar_are_clear_errors() -> None:
    algo, dataset = build("sac")
    batch = evaluation_batch(algo, dataset, 8, seed=0)
    with pytest.raises(SamrlError, match=r"did you mean 'critic'.*choose from: actor, critic"):
        network_loss_fn(algo, "critc", batch)
    with pytest.raises(SamrlError, match="scalar"):
        network_loss_fn(algo, "temp", batch)


def test_evaluation_batch_is_seeded_and_leaves_global_rngs_alone() -> None:
    algo, dataset = build("sac")
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    a = evaluation_batch(algo, dataset, 50, seed=1)
    b = evaluation_batch(algo, dataset, 50, seed=1)
    c = evaluation_batch(algo, dataset, 50, seed=2)
    assert torch.equal(a.observations, b.observations)
    assert not torch.equal(a.observations, c.observations)
    assert a.observations.shape[0] == 50
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert torch.equal(torch.get_rng_state(), torch_state)
    # more than the dataset holds: all of it, once
    everything = evaluation_batch(algo, dataset, 10**6, seed=0)
    assert everything.observations.shape[0] == dataset.transition_count
    chunks = evaluation_batches(algo, dataset, 20, 3, seed=0)
    rows = torch.cat([c.observations for c in chunks])
    assert rows.shape[0] == 60 and torch.unique(rows, dim=0).shape[0] == 60  # disjoint


def test_transformer_batches_are_trajectories() -> None:
    algo, dataset = build("decision_transformer")
    batch = evaluation_batch(algo, dataset, 40, seed=0)
    assert batch.observations.shape[:2] == (10, 4)  # 40 // context_size 4, each 4 steps


def _dense_hessian(loss_fn: Any, params: list) -> torch.Tensor:
    """Row i of H = d/dw (dL/dw_i), differentiating each gradient component once more."""
    loss = loss_fn()
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, params, create_graph=True)])
    rows = []
    for i in range(g.numel()):
        row = torch.autograd.grad(g[i], params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (torch.zeros_like(p) if r is None else r).reshape(-1)
                    for r, p in zip(row, params, strict=True)
                ]
            )
        )
    return torch.stack(rows).double()


@pytest.mark.parametrize("name", ["bc", "dqn"])
def test_lanczos_top_eigenvalue_matches_the_dense_hessian(name: str) -> None:
    algo, dataset = build(name)
    net = {"bc": "policy", "dqn": "q"}[name]
    loss_fn, params = network_loss_fn(algo, net, evaluation_batch(algo, dataset, 64, 0))
    dense = _dense_hessian(loss_fn, params)
    torch.testing.assert_close(dense, dense.T, rtol=1e-4, atol=1e-5)
    expected = torch.linalg.eigvalsh((dense + dense.T) / 2).flip(0)
    values, _ = top_eigenvalues(loss_fn, params, 2, tol=1e-6)
    torch.testing.assert_close(values, expected[:2], rtol=1e-3, atol=0.0)
    # and one product through the operator equals the dense one
    v = torch.randn(dense.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        HessianOperator(loss_fn, params).matvec(v), dense @ v, rtol=1e-4, atol=1e-5
    )


def test_landscape_at_the_origin_is_the_training_loss() -> None:
    algo, dataset = build("td3_plus_bc")  # noise in the target: the frozen RNG must hold
    loss_fn, params = network_loss_fn(algo, "critic", evaluation_batch(algo, dataset, 64, 0))
    direction = filter_normalized_direction(params, seed=0)
    values = loss_surface_1d(loss_fn, params, direction, [-0.5, 0.0, 0.5])
    assert values[1] == float(loss_fn())
    assert values[0] != values[1]


def test_more_ascent_steps_never_lower_the_worst_case() -> None:
    algo, dataset = build("sac")
    loss_fn, params = network_loss_fn(algo, "critic", evaluation_batch(algo, dataset, 64, 0))
    one = worst_case_sharpness(loss_fn, params, rho=0.1, steps=1)
    five = worst_case_sharpness(loss_fn, params, rho=0.1, steps=5)
    assert five["sharpness"] >= one["sharpness"] > 0
    assert five["eps_norm"] <= 0.1 * (1 + 1e-6)


@pytest.mark.parametrize(
    ("name", "net", "adaptive"),
    [
        ("td3_plus_bc", "critic", False),
        ("sac", "critic", False),
        ("dqn", "q", False),
        ("bc", "policy", True),
    ],
)
def test_one_step_sharpness_equals_what_the_sam_engine_reports(
    name: str, net: str, adaptive: bool
) -> None:
    rho = 2.0 if adaptive else 0.05
    factory = SAMFactory(rho=rho, adaptive=adaptive)
    algo, dataset = build(name, lambda n: factory if n == net else None)
    np.random.seed(7)
    numpy_batch = dataset.sample_transition_batch(16)
    state = RngState.capture()
    loss_fn, params = network_loss_fn(algo, net, to_torch_batch(algo, numpy_batch), rng_state=state)
    ours = worst_case_sharpness(loss_fn, params, rho, steps=1, adaptive=adaptive)
    state.restore()
    metrics = algo.update(numpy_batch)  # the engine's two passes on the same batch and draws
    assert metrics[f"{net}_sharpness"] == pytest.approx(ours["sharpness"], rel=1e-4, abs=1e-7)
    assert metrics[f"{net}_loss_perturbed"] == pytest.approx(ours["loss_perturbed"], rel=1e-6)
    assert metrics[f"{net}_grad_norm"] == pytest.approx(ours["grad_norm"], rel=1e-5)
