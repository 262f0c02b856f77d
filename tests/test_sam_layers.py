"""BatchNorm statistics are updated by pass 1 only; dropout masks are replayed in pass 2."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import build, facts_of, own_metrics, sample_batch, state_differences, train
from d3rlpy.models.encoders import VectorEncoderFactory
from torch import nn

from samrl.sam import SAMFactory

ALGORITHMS = ["cql", "sac", "td3_plus_bc", "iql", "dqn", "bc", "bear"]


def _encoders(name: str, **kwargs: object) -> dict[str, VectorEncoderFactory]:
    config = facts_of(name).config_class
    return {
        f.name: VectorEncoderFactory(hidden_units=[8], **kwargs)  # type: ignore[arg-type]
        for f in dataclasses.fields(config)
        if f.name.endswith("encoder_factory")
    }


def _buffers(algo: object) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, module in algo.impl.modules.get_torch_modules().items():  # type: ignore[attr-defined]
        assert isinstance(module, nn.Module)
        for key, buffer in module.named_buffers():
            out[f"{name}.{key}"] = buffer
    return out


@pytest.mark.parametrize("name", ALGORITHMS)
def test_batch_norm_rho_zero_is_bitwise_adam(name: str) -> None:
    encoders = _encoders(name, use_batch_norm=True)
    base, dataset = build(name, **encoders)
    sam, _ = build(name, lambda net: SAMFactory(rho=0.0), **encoders)
    assert any("running_mean" in k for k in _buffers(sam)), "no BatchNorm was built"
    assert train(base, dataset, name) == [own_metrics(m) for m in train(sam, dataset, name)]
    assert state_differences(base, sam) == []  # running_mean/var, num_batches_tracked included


# Modules whose train-mode forward passes also happen *after* another network's step in the same
# update, so their statistics legitimately depend on the (SAM vs Adam) stepped weights.
READ_AFTER_A_STEP = {
    "iql": ("value_func.",),  # the actor's advantage weights read V after the critic step
    "bear": ("vae_decoder.",),  # the actor's MMD samples the VAE after the imitator step
}


@pytest.mark.parametrize("name", ALGORITHMS)
def test_batch_norm_statistics_come_from_pass_one_only(name: str) -> None:
    """At rho > 0 every BatchNorm counted exactly the forward passes Adam's run counted, and
    after one update the statistics equal Adam's bitwise: pass 2 at w + eps leaves no trace."""
    encoders = _encoders(name, use_batch_norm=True)
    base, dataset = build(name, **encoders)
    sam, _ = build(name, lambda net: SAMFactory(rho=0.05), **encoders)
    facts = facts_of(name)
    np.random.seed(0)
    batches = [sample_batch(dataset, facts) for _ in range(5)]
    for algo in (base, sam):
        torch.manual_seed(0)
        algo.update(batches[0])
    assert state_differences(base, sam) != []
    base_buffers, sam_buffers = _buffers(base), _buffers(sam)
    assert base_buffers.keys() == sam_buffers.keys()
    exempt = READ_AFTER_A_STEP.get(name, ())
    different = [
        k
        for k in base_buffers
        if not k.startswith(exempt) and not torch.equal(base_buffers[k], sam_buffers[k])
    ]
    assert different == []

    for algo in (base, sam):
        torch.manual_seed(1)
        for batch in batches[1:]:
            algo.update(batch)
    counts = {k: int(v) for k, v in _buffers(sam).items() if k.endswith("num_batches_tracked")}
    assert counts and max(counts.values()) >= 5
    assert counts == {k: int(_buffers(base)[k]) for k in counts}


@pytest.mark.parametrize("name", ALGORITHMS)
def test_dropout_rho_zero_is_bitwise_adam(name: str) -> None:
    encoders = _encoders(name, dropout_rate=0.1)
    base, dataset = build(name, **encoders)
    sam, _ = build(name, lambda net: SAMFactory(rho=0.0), **encoders)
    base_runs = train(base, dataset, name)
    sam_runs = train(sam, dataset, name)
    assert state_differences(base, sam) == []
    assert all(v == 0.0 for m in sam_runs for k, v in m.items() if k.endswith("_sharpness"))
    assert [own_metrics(m) for m in sam_runs] == base_runs
