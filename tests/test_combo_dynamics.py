"""COMBO's dynamics ensemble learns Pendulum-v1 from the built-in pendulum-random data.

Thresholds (checked against the real gymnasium environment, 200 dataset states with uniform
random torques): mean absolute one-step error below 0.02 for each observation dimension
(cos, sin, angular velocity; the no-change guess s' = s is off by 0.09, 0.09 and 0.45) and
below 0.5 for the reward (range about -16..0). Measured here: at most 0.004, and 0.23.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import d3rlpy
import gymnasium as gym
import numpy as np
import pytest
import torch
from d3rlpy.models.encoders import VectorEncoderFactory

from samrl.algos import build_for_training
from samrl.combo import COMBOConfig

OBS_MAE_MAX = 0.02
REWARD_MAE_MAX = 0.5


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from samrl.data import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAMRL_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        return load_dataset("pendulum-random", size=3000, seed=0)


@pytest.fixture(scope="module")
def trained(pendulum: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list, Path]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    d3rlpy.seed(0)
    encoder = VectorEncoderFactory(hidden_units=[16])
    algo = COMBOConfig(
        actor_encoder_factory=encoder,
        critic_encoder_factory=encoder,
        dynamics_encoder_factory=VectorEncoderFactory(hidden_units=[32, 32], activation="swish"),
        dynamics_ensemble_size=2,
        dynamics_max_epochs=30,
        dynamics_batch_size=64,
        dynamics_learning_rate=3e-3,
    ).create(device="cpu")
    build_for_training(algo, pendulum.train)
    run_dir = tmp_path_factory.mktemp("run")
    rows = algo.samrl_pretrain(pendulum.train, run_dir=run_dir)
    torch.set_num_threads(threads)
    return algo, rows, run_dir


def test_validation_nll_falls_and_is_written_as_it_goes(trained: Any) -> None:
    _, rows, run_dir = trained
    val = [r["val_nll"] for r in rows]
    assert len(rows) >= 10
    assert min(val) < val[0] - 5.0
    assert rows[-1]["val_mse"] < rows[0]["val_mse"] / 10
    with (run_dir / "dynamics.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["epoch", "train_nll", "val_nll", "val_mse"]
    assert [int(r["epoch"]) for r in table] == list(range(1, len(rows) + 1))


def test_one_step_predictions_match_the_real_pendulum(pendulum: Any, trained: Any) -> None:
    algo, _, _ = trained
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    observations = np.concatenate([e.observations for e in pendulum.train.episodes])
    states = observations[rng.choice(len(observations), 200, replace=False)]
    actions = rng.uniform(-2.0, 2.0, size=(200, 1)).astype(np.float32)
    true_next, true_reward = [], []
    for obs, action in zip(states, actions, strict=True):
        env.state = np.array([np.arctan2(obs[1], obs[0]), obs[2]])
        next_obs, reward, *_ = env.step(action)
        true_next.append(next_obs)
        true_reward.append(reward)
    next_obs, reward = algo.impl.dynamics.predict_mean(torch.tensor(states), torch.tensor(actions))
    obs_mae = np.abs(next_obs.numpy() - np.array(true_next)).mean(0)
    reward_mae = np.abs(reward.numpy()[:, 0] - np.array(true_reward)).mean()
    assert (obs_mae < OBS_MAE_MAX).all(), obs_mae
    assert reward_mae < REWARD_MAE_MAX, reward_mae


def test_dynamics_csv_metrics_recomputed_with_torch_distributions() -> None:
    """val_nll / val_mse (dynamics.csv) against Normal.log_prob and a plain squared error."""
    from samrl.combo.dynamics import DynamicsBatch, ProbabilisticEnsemble
    from samrl.combo.pretrain import evaluate

    torch.manual_seed(0)
    ensemble = ProbabilisticEnsemble(3, 2, VectorEncoderFactory(hidden_units=[8]), 3)
    n = 50
    batch = DynamicsBatch(
        observations=torch.randn(n, 3),
        actions=torch.randn(n, 2),
        rewards=torch.randn(n, 1),
        next_observations=torch.randn(n, 3),
        weights=torch.ones(3, n),
    )
    ensemble.fit_normalizer(batch)
    nll, mse = evaluate(ensemble, batch)
    with torch.no_grad():
        mean, logstd = ensemble(batch.observations, batch.actions)
        target = torch.cat([batch.next_observations - batch.observations, batch.rewards], -1)
        standardized = (target - target.mean(0)) / target.std(0)
        log_prob = torch.distributions.Normal(mean, logstd.exp()).log_prob(standardized)
        expected_nll = float(-log_prob.sum(-1).mean())
        prediction = mean * target.std(0) + target.mean(0)
        expected_mse = float(((prediction - target) ** 2).mean())
    assert nll == pytest.approx(expected_nll, rel=1e-5)
    assert mse == pytest.approx(expected_mse, rel=1e-5)
