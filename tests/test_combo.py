"""COMBO: SAM on critic, actor and dynamics; the conservative term; rollouts; config; save/load."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import d3rlpy
import numpy as np
import pytest
import torch
from conftest import own_metrics, sam_metrics, state_differences
from d3rlpy.models.encoders import VectorEncoderFactory
from d3rlpy.optimizers import OptimizerFactory

import samrl
from samrl.algos import algorithm_table, build_for_training
from samrl.combo import COMBO, COMBOConfig
from samrl.combo.dynamics import DynamicsBatch
from samrl.combo.impl import MixedMiniBatch
from samrl.config import load_config
from samrl.errors import ConfigError
from samrl.sam import SAMFactory, install, is_installed
from samrl.testing.data import random_dataset

samrl.register()  # d3rlpy.load_learnable of samrl models below

NETWORK_FIELDS = ("actor_optim_factory", "critic_optim_factory", "dynamics_optim_factory")


def tiny(**overrides: Any) -> dict[str, Any]:
    encoder = VectorEncoderFactory(hidden_units=[16])
    params: dict[str, Any] = {
        "actor_encoder_factory": encoder,
        "critic_encoder_factory": encoder,
        "dynamics_encoder_factory": encoder,
        "dynamics_ensemble_size": 2,
        "dynamics_max_epochs": 3,
        "dynamics_batch_size": 32,
        "dynamics_patience": 2,
        "batch_size": 16,
        "n_action_samples": 4,
        "rollout_batch_size": 8,
        "rollout_horizon": 3,
        "rollout_interval": 5,
    }
    params.update(overrides)
    return params


def built(factory: OptimizerFactory | None = None, seed: int = 0, **overrides: Any) -> Any:
    params = tiny(**overrides)
    if factory is not None:
        params.update({field: factory for field in NETWORK_FIELDS})
    d3rlpy.seed(seed)
    dataset = random_dataset(discrete=False)
    algo = COMBOConfig(**params).create(device="cpu")
    build_for_training(algo, dataset)
    install(algo)
    return algo, dataset


def run(algo: Any, dataset: Any, n: int, seed: int = 1) -> tuple[list[dict], list[dict]]:
    """Pretraining, then n updates; random draws depend only on `seed`."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    rows = algo.samrl_pretrain(dataset)
    return rows, [algo.update(dataset.sample_transition_batch(16)) for _ in range(n)]


def test_combo_is_in_the_algorithm_table() -> None:
    facts = algorithm_table()["combo"]
    assert facts.config_class is COMBOConfig
    assert set(facts.networks) == {"actor", "critic", "dynamics"}
    assert facts.scalars == ("temp",)
    assert not facts.discrete


def test_rho_zero_is_bitwise_adam_with_pretraining_and_rollouts() -> None:
    base, dataset = built()
    sam, _ = built(SAMFactory(rho=0.0))
    base_rows, base_metrics = run(base, dataset, 22)
    sam_rows, sam_metrics_ = run(sam, dataset, 22)

    assert state_differences(base, sam) == []  # dynamics, critic, actor, targets, optimizers
    assert [own_metrics(r) for r in sam_rows] == base_rows
    assert [own_metrics(m) for m in sam_metrics_] == base_metrics
    sharpness = [v for m in sam_rows + sam_metrics_ for k, v in m.items() if "sharpness" in k]
    assert sharpness and all(v == 0.0 for v in sharpness)
    generated = sam.impl.model_buffer.data, base.impl.model_buffer.data
    assert torch.equal(generated[0].next_observations, generated[1].next_observations)


def test_positive_rho_reports_finite_sharpness_for_every_network() -> None:
    algo, dataset = built(SAMFactory(rho=0.05))
    rows, metrics = run(algo, dataset, 6)
    assert rows and all(math.isfinite(r["dynamics_sharpness"]) for r in rows)
    for net in ("critic", "actor"):
        values = [m[f"{net}_sharpness"] for m in metrics]
        assert all(math.isfinite(v) for v in values) and any(v != 0.0 for v in values)
    # the pretraining's mean dynamics metrics come with the first update only
    assert "dynamics_sharpness" in metrics[0] and "dynamics_sharpness" not in metrics[1]
    assert all(math.isfinite(v) for v in sam_metrics(metrics[0]).values())


def test_sam_only_on_dynamics_leaves_the_policy_updates_plain() -> None:
    algo, dataset = built(dynamics_optim_factory=SAMFactory(rho=0.05))
    rows, metrics = run(algo, dataset, 3)
    assert "dynamics_sharpness" in rows[0]
    assert not any(k.startswith(("critic_", "actor_")) and "sharpness" in k for k in metrics[1])


class KnownQ:
    """Q_k(s, a) = k * sum(s): independent of the action, so the logsumexp has a closed form."""

    def compute_expected_q(self, x: torch.Tensor, action: torch.Tensor, reduction: str) -> Any:
        assert reduction == "none"
        return torch.stack([k * x.sum(1, keepdim=True) for k in (1.0, 2.0)])

    def compute_error(self, **kwargs: Any) -> torch.Tensor:
        return torch.tensor(0.5)  # the TD part, unchanged by the conservative weight


def test_conservative_term_matches_a_hand_computation() -> None:
    algo, _ = built(n_action_samples=3)
    impl = algo.impl
    impl._q_func_forwarder = KnownQ()
    n = 3
    policy_values = torch.tensor([[[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]]).repeat(2, 1, 1)
    policy_values[1] *= 2.0
    log_probs = torch.tensor([[[-1.0, 0.0, 0.5], [0.0, -2.0, 1.0]]])
    impl._compute_policy_is_values = lambda policy_obs, value_obs, returns_to_go: (
        policy_values,
        log_probs,
    )
    model_obs = torch.tensor([[0.1, 0.2, 0.3], [-0.5, 0.0, 0.5]])
    data_obs = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 2.0], [-1.0, 0.0, 0.0]])
    data_act = torch.zeros(3, 2)
    real = torch.zeros(4, 3)
    batch = MixedMiniBatch(
        observations=real,
        actions=torch.zeros(4, 2),
        rewards=torch.zeros(4, 1),
        next_observations=real,
        next_actions=torch.zeros(4, 2),
        returns_to_go=torch.zeros(4, 1),
        terminals=torch.zeros(4, 1),
        intervals=torch.ones(4, 1),
        device="cpu:0",
        penalty_observations=model_obs,
        data_observations=data_obs,
        data_actions=data_act,
    )
    # by hand: uniform samples have Q_k(s) (action-free) and density 1/2^|A| = 1/4
    expected = 0.0
    for k in (1.0, 2.0):
        lse = []
        for i, s in enumerate(model_obs):
            terms = [float(policy_values[int(k) - 1, i, j] - log_probs[0, i, j]) for j in range(n)]
            terms += [k * float(s.sum()) - math.log(0.25)] * n
            lse.append(math.log(sum(math.exp(t) for t in terms)))
        expected += sum(lse) / len(lse) - k * float(data_obs.sum(1).mean())
    assert float(impl.conservative_penalty(batch)) == pytest.approx(expected, rel=1e-6)

    q_tpn = torch.zeros(4, 1)
    for weight in (1.0, 3.0):
        impl._conservative_weight = weight
        loss = impl.compute_critic_loss(batch, q_tpn)
        assert float(loss.conservative_loss) == pytest.approx(weight * expected, rel=1e-6)
        assert float(loss.td_loss) == 0.5
        assert float(loss.critic_loss) == pytest.approx(0.5 + weight * expected)


def test_rollouts_are_non_terminal_chained_and_of_the_given_horizon() -> None:
    algo, dataset = built(rollout_batch_size=7, rollout_horizon=4, rollout_retain=2)
    algo.samrl_pretrain(dataset)
    impl = algo.impl
    t = impl.generate_rollouts(fallback=torch.zeros(1, 3))
    assert len(t) == 7 * 4 and len(impl.model_buffer) == 28
    for h in range(3):  # step h's next states are step h + 1's states
        assert torch.equal(
            t.next_observations[7 * h : 7 * (h + 1)], t.observations[7 * (h + 1) :][:7]
        )
    impl.generate_rollouts(fallback=torch.zeros(1, 3))
    impl.generate_rollouts(fallback=torch.zeros(1, 3))
    assert len(impl.model_buffer) == impl.model_buffer.capacity == 2 * 7 * 4  # FIFO

    mixed = impl.mix(_torch_batch(algo, dataset))  # real rows first, then model rows
    assert torch.equal(mixed.terminals[8:], torch.zeros(8, 1))
    assert torch.equal(mixed.intervals[8:], torch.ones(8, 1))
    assert mixed.penalty_observations.shape == (8, 3) and mixed.data_observations.shape == (8, 3)


def _torch_batch(algo: Any, dataset: Any) -> Any:
    from d3rlpy.torch_utility import TorchMiniBatch

    return TorchMiniBatch.from_batch(
        dataset.sample_transition_batch(16), gamma=0.99, compute_returns_to_go=False, device="cpu:0"
    )


def test_rollouts_happen_every_rollout_interval_updates() -> None:
    algo, dataset = built(rollout_batch_size=5, rollout_horizon=2, rollout_interval=4)
    rounds = []
    original = algo.impl.generate_rollouts
    algo.impl.generate_rollouts = lambda fallback: rounds.append(1) or original(fallback)
    run(algo, dataset, 9)
    assert len(rounds) == 3  # updates 0, 4, 8


@pytest.mark.parametrize("ratio, n_real", [(0.0, 0), (0.25, 4), (1.0, 16)])
def test_real_ratio_sets_the_mix(ratio: float, n_real: int) -> None:
    algo, dataset = built(real_ratio=ratio)
    algo.samrl_pretrain(dataset)
    algo.impl.generate_rollouts(fallback=torch.zeros(1, 3))
    batch = _torch_batch(algo, dataset)
    mixed = algo.impl.mix(batch)
    assert mixed.observations.shape[0] == 16
    assert torch.equal(mixed.observations[:n_real], batch.observations[:n_real])
    data_rows = n_real if n_real else 16  # real_ratio 0: the data term uses the real batch
    assert torch.equal(mixed.data_observations, batch.observations[:data_rows])


@pytest.mark.parametrize(
    "field, value",
    [
        ("real_ratio", -0.1),
        ("real_ratio", 1.5),
        ("rollout_horizon", 0),
        ("rollout_interval", 0),
        ("dynamics_holdout_ratio", 1.0),
        ("dynamics_ensemble_size", 0),
        ("conservative_weight", -1.0),
    ],
)
def test_bad_settings_are_rejected_with_the_field_name(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        COMBOConfig(**{field: value})


def test_config_layer_reports_bad_combo_params(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nalgo: {name: combo, params: {real_ratio: 2.0}}\n"
        "dataset: {name: pendulum-random}\n"
    )
    with pytest.raises(ConfigError, match="real_ratio"):
        load_config(path, check_dataset=False)


def test_save_load_install_update(tmp_path: Path) -> None:
    algo, dataset = built(SAMFactory(rho=0.05))
    run(algo, dataset, 3)
    path = str(tmp_path / "combo.d3")
    algo.save(path)
    loaded = d3rlpy.load_learnable(path, device="cpu")
    assert isinstance(loaded, COMBO) and not is_installed(loaded)
    assert state_differences(algo, loaded) == []
    assert bool(loaded.impl.dynamics.trained)
    install(loaded)
    assert loaded.samrl_pretrain(dataset) == []  # a trained model is not trained again
    metrics = loaded.update(dataset.sample_transition_batch(16))
    assert math.isfinite(metrics["critic_sharpness"]) and len(loaded.impl.model_buffer) > 0


def test_d3rlpy_fit_trains_the_dynamics_first() -> None:
    d3rlpy.seed(0)
    dataset = random_dataset(discrete=False)
    algo = COMBOConfig(**tiny()).create(device="cpu")
    from d3rlpy.logging import NoopAdapterFactory

    algo.fit(
        dataset,
        n_steps=2,
        n_steps_per_epoch=2,
        logger_adapter=NoopAdapterFactory(),
        show_progress=False,
    )
    assert bool(algo.impl.dynamics.trained)
    assert algo.impl.start_observations is not None


def test_dynamics_loss_accepts_a_d3rlpy_minibatch_for_analysis() -> None:
    algo, dataset = built()
    batch = _torch_batch(algo, dataset)
    loss = algo.impl.dynamics.compute_loss(batch)
    direct = algo.impl.dynamics.compute_loss(
        DynamicsBatch.from_minibatch(batch, algo.impl.dynamics.n_members)
    )
    assert torch.equal(loss.dynamics_loss, direct.dynamics_loss)
