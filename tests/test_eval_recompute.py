"""eval.csv recomputed another way: the saved model rolled out by hand, TD error by formula."""

from __future__ import annotations

from pathlib import Path

import d3rlpy
import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from conftest import tiny_config, write_config

import samrl.sam
from samrl.cli import main
from samrl.data import load_dataset


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("eval")
    config = tiny_config(
        tmp_path,
        dataset={"test_fraction": 0.25},
        train={"n_steps": 20, "n_steps_per_epoch": 10, "eval_episodes": 2},
    )
    try:  # capsys is function-scoped: call the entry point directly
        main(["train", "--config", str(write_config(tmp_path, config)), "--quiet"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    return run_dir


def _load(run_dir: Path, step: int) -> d3rlpy.base.LearnableBase:
    algo = d3rlpy.load_learnable(str(run_dir / "d3rlpy" / f"model_{step}.d3"), device="cpu")
    samrl.sam.install(algo)
    return algo


def test_return_mean_equals_rollouts_of_the_saved_model(trained_run: Path) -> None:
    evals = pd.read_csv(trained_run / "eval.csv")
    for row in evals.itertuples():
        algo = _load(trained_run, row.step)
        env = gym.make("Pendulum-v1")
        returns = []
        for episode in range(2):  # samrl seeds episode i of epoch e with 10000 e + i
            observation, _ = env.reset(seed=10_000 * row.epoch + episode)
            total, done = 0.0, False
            while not done:
                action = algo.predict(observation[None].astype(np.float32))[0]
                observation, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        assert row.return_mean == pytest.approx(np.mean(returns), rel=1e-9)
        assert row.return_std == pytest.approx(np.std(returns), rel=1e-9, abs=1e-9)
        low, high = -1262.068186352458, -148.50715677380956  # pendulum references
        expected = 100 * (np.mean(returns) - low) / (high - low)
        assert row.normalized_score == pytest.approx(expected, rel=1e-9)


def test_held_out_td_error_and_value_estimate_by_formula(trained_run: Path) -> None:
    evals = pd.read_csv(trained_run / "eval.csv")
    data = load_dataset("pendulum-random", size=1000, seed=0, test_fraction=0.25)
    assert data.test_episodes
    row = evals.iloc[-1]
    algo = _load(trained_run, int(row.step))
    squared, values = [], []
    for episode in data.test_episodes:
        for i in range(episode.transition_count):
            t = data.train.transition_picker(episode, i)
            obs, act = t.observation[None], t.action[None]
            q = algo.predict_value(obs, act)[0]
            next_q = algo.predict_value(
                t.next_observation[None], algo.predict(t.next_observation[None])
            )[0]
            target = float(t.reward[0]) + algo.gamma * next_q * (1.0 - float(t.terminal))
            squared.append((q - target) ** 2)
            values.append(algo.predict_value(obs, algo.predict(obs))[0])
    assert row.td_error == pytest.approx(np.mean(squared), rel=1e-4)
    assert row.value_estimate == pytest.approx(np.mean(values), rel=1e-4)
