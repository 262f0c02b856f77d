"""rho = 0 must reproduce the base optimizer bitwise, for every algorithm and base optimizer.

This one property catches a wrong RNG replay, a doubled nested (temperature/alpha) step, a
perturbation of the wrong parameters, a wrong restore and a scheduler stepped twice.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import (
    build,
    count_base_steps,
    facts_of,
    optimizers,
    own_metrics,
    sam_metrics,
    state_differences,
    train,
)
from d3rlpy.optimizers import (
    AdamFactory,
    AdamWFactory,
    CosineAnnealingLRFactory,
    OptimizerFactory,
    RMSpropFactory,
    SGDFactory,
)

from samrl.algos import algorithm_table
from samrl.sam import SAMFactory, SAMOptimizerWrapper
from samrl.sam.engine import network_name, sam_optimizers

ALGORITHMS = sorted(algorithm_table())
N_UPDATES = 20


def test_algorithm_table_has_every_d3rlpy_algorithm() -> None:
    assert len([n for n in ALGORITHMS if not n.startswith("combo")]) >= 26


def _sam(rho: float, **kwargs: object) -> SAMFactory:
    return SAMFactory(rho=rho, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_rho_zero_is_bitwise_the_base_optimizer(name: str) -> None:
    base, dataset = build(name)
    sam, _ = build(name, lambda net: _sam(0.0))
    assert sam_optimizers(sam), "every network should have a SAM optimizer"

    base_metrics = train(base, dataset, name, N_UPDATES)
    sam_runs = train(sam, dataset, name, N_UPDATES)

    assert state_differences(base, sam) == []
    assert [own_metrics(m) for m in sam_runs] == base_metrics
    sharpness = [v for m in sam_runs for k, v in m.items() if k.endswith("_sharpness")]
    assert sharpness, "no sharpness was reported"
    assert all(v == 0.0 for v in sharpness), sharpness


@pytest.mark.parametrize("name", ALGORITHMS)
def test_positive_rho_reports_finite_sharpness_and_changes_the_trajectory(name: str) -> None:
    base, dataset = build(name)
    sam, _ = build(name, lambda net: _sam(0.05))
    steps = count_base_steps(sam)
    train(base, dataset, name, N_UPDATES)
    runs = train(sam, dataset, name, N_UPDATES)

    sam_fields = {f: o for f, o in optimizers(sam).items() if isinstance(o, SAMOptimizerWrapper)}
    stepped = {f for f in sam_fields if steps[f][0] > 0}
    assert stepped, "no SAM network was updated"
    reported = {k.removesuffix("_sharpness") for m in runs for k in m if k.endswith("_sharpness")}
    assert reported == {network_name(f, name) for f in stepped}
    assert reported <= set(facts_of(name).networks)
    for m in runs:
        for key, value in sam_metrics(m).items():
            assert math.isfinite(value), (key, value)
    for field in stepped:
        params_base = optimizers(base)[field]._params
        params_sam = sam_fields[field]._params
        assert any(not torch.equal(a, b) for a, b in zip(params_base, params_sam, strict=True)), (
            f"{field}: SAM at rho=0.05 left the parameters equal to Adam's"
        )


@pytest.mark.parametrize("name", ["cql", "sac", "td3_plus_bc", "iql", "dqn", "bc", "bear"])
def test_asam_rho_zero_is_bitwise_the_base_optimizer(name: str) -> None:
    base, dataset = build(name)
    sam, _ = build(name, lambda net: _sam(0.0, adaptive=True))
    base_metrics = train(base, dataset, name, N_UPDATES)
    runs = train(sam, dataset, name, N_UPDATES)
    assert state_differences(base, sam) == []
    assert [own_metrics(m) for m in runs] == base_metrics
    assert all(v == 0.0 for m in runs for k, v in m.items() if k.endswith("_sharpness"))


@pytest.mark.parametrize("name", ["cql", "td3_plus_bc", "dqn"])
def test_asam_positive_rho_differs_from_sam(name: str) -> None:
    sam, dataset = build(name, lambda net: _sam(0.05))
    asam, _ = build(name, lambda net: _sam(0.05, adaptive=True))
    train(sam, dataset, name, 5)
    train(asam, dataset, name, 5)
    assert state_differences(sam, asam) != []


BASES: dict[str, OptimizerFactory] = {
    "sgd_momentum": SGDFactory(momentum=0.9),
    "sgd_nesterov": SGDFactory(momentum=0.9, nesterov=True, weight_decay=1e-4),
    "adamw": AdamWFactory(weight_decay=1e-2),
    "rmsprop": RMSpropFactory(),
    "adam_amsgrad": AdamFactory(amsgrad=True),
}


@pytest.mark.parametrize("base_name", sorted(BASES))
@pytest.mark.parametrize("name", ["cql", "dqn"])
def test_rho_zero_with_other_base_optimizers(name: str, base_name: str) -> None:
    factory = BASES[base_name]
    plain, dataset = build(name, lambda net: factory)
    sam, _ = build(name, lambda net: SAMFactory(base=factory, rho=0.0))
    assert train(plain, dataset, name) == [own_metrics(m) for m in train(sam, dataset, name)]
    assert state_differences(plain, sam) == []


def _clipped_scheduled() -> AdamFactory:
    return AdamFactory(clip_grad_norm=0.5, lr_scheduler_factory=CosineAnnealingLRFactory(T_max=10))


@pytest.mark.parametrize("name", ["cql", "td3_plus_bc", "dqn"])
def test_clipping_and_scheduler_apply_once_per_update(name: str) -> None:
    plain, dataset = build(name, lambda net: _clipped_scheduled())
    sam, _ = build(name, lambda net: SAMFactory(base=_clipped_scheduled(), rho=0.0))
    steps = count_base_steps(sam)
    train(plain, dataset, name, 13)
    train(sam, dataset, name, 13)
    assert state_differences(plain, sam) == []
    for field, opt in optimizers(sam).items():
        if not isinstance(opt, SAMOptimizerWrapper):
            continue
        scheduler = opt._lr_scheduler
        assert scheduler is not None
        # the scheduler stepped exactly once per base step, never in pass 2
        assert scheduler.last_epoch == steps[field][0] > 0
        plain_lr = optimizers(plain)[field].optim.param_groups[0]["lr"]
        assert opt.optim.param_groups[0]["lr"] == plain_lr


@pytest.mark.parametrize("name", ["cql", "dqn"])
def test_clipping_given_on_the_sam_factory_acts_like_the_base_clipping(name: str) -> None:
    plain, dataset = build(name, lambda net: AdamFactory(clip_grad_norm=0.05))
    sam, _ = build(name, lambda net: SAMFactory(rho=0.0, clip_grad_norm=0.05))
    unclipped, _ = build(name, lambda net: SAMFactory(rho=0.0))
    train(plain, dataset, name)
    train(sam, dataset, name)
    train(unclipped, dataset, name)
    assert state_differences(plain, sam) == []
    assert state_differences(plain, unclipped) != []  # the clip was active
