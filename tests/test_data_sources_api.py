"""Minari datasets through Minari's own API, and d3rlpy's own datasets through d3rlpy.datasets
(both offline: the files are made here, with the libraries' own writers)."""

from __future__ import annotations

import os
import pathlib
import sys

import gymnasium as gym
import h5py
import numpy as np
import pytest
from conftest import run_cli, tiny_config, write_config

from samrl.data import describe_dataset, load_dataset

minari = pytest.importorskip("minari")

DATASET_ID = "cartpole/random-v0"


@pytest.fixture
def minari_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A dataset written by Minari's DataCollector into a temporary MINARI_DATASETS_PATH."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    env = minari.DataCollector(gym.make("CartPole-v1"))
    env.action_space.seed(0)
    for episode in range(6):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
    env.create_dataset(
        dataset_id=DATASET_ID, algorithm_name="random", ref_min_score=9.0, ref_max_score=500.0
    )
    env.close()
    return root


def test_minari_dataset_read_through_minari(minari_dir: pathlib.Path) -> None:
    info = describe_dataset(f"minari:{DATASET_ID}")
    assert info.discrete and info.env_id == "CartPole-v1"
    assert (info.ref_min_return, info.ref_max_return) == (9.0, 500.0)
    ds = load_dataset(f"minari:{DATASET_ID}")
    reference = minari.load_dataset(DATASET_ID)
    episodes = list(reference.iterate_episodes())
    assert len(ds.train.episodes) == len(episodes) == 6
    for ours, theirs in zip(ds.train.episodes, episodes, strict=True):
        np.testing.assert_array_equal(ours.observations, theirs.observations[:-1])
        np.testing.assert_array_equal(ours.actions[:, 0], theirs.actions)
        np.testing.assert_array_equal(ours.rewards[:, 0], theirs.rewards)
        assert ours.terminated == bool(theirs.terminations[-1])


def test_minari_dataset_trains(
    minari_dir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(
        tmp_path,
        algo={"name": "discrete_cql", "params": {"batch_size": 16}},
        dataset={"name": f"minari:{DATASET_ID}"},
        train={"n_steps": 20, "n_steps_per_epoch": 10, "eval_episodes": 1},
    )
    code, _, err = run_cli(["train", "--config", str(write_config(tmp_path, config))], capsys)
    assert code == 0, err
    eval_csv = next((tmp_path / "runs").glob("*/*/eval.csv"))
    assert len(eval_csv.read_text().splitlines()) == 3  # evaluated in CartPole-v1


def test_minari_missing_without_extra_is_one_line(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "minari", None)  # as without samrl[minari]
    monkeypatch.setenv("SAMRL_OFFLINE", "0")
    code, _, err = run_cli(["data", "download", "minari:mujoco/hopper/medium-v0"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'samrl[minari]'" in err


def test_minari_missing_offline_is_one_line(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    code, _, err = run_cli(["data", "info", "minari:mujoco/hopper/medium-v0"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "samrl data download minari:mujoco/hopper/medium-v0" in err


# ---- d3rlpy's datasets --------------------------------------------------------------------------


def write_d3rlpy_v1(path: pathlib.Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A file in d3rlpy's v1 dataset format (what d3rlpy.dataset.io.load_v1 reads)."""
    n = 400
    arrays = {
        "observations": rng.normal(size=(n, 3)).astype(np.float32),
        "actions": rng.uniform(-2, 2, size=(n, 1)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": np.zeros(n, np.float32),
        "episode_terminals": np.zeros(n, np.float32),
    }
    arrays["episode_terminals"][199::200] = 1.0
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
    return arrays


def test_d3rlpy_file_in_its_data_dir_is_used_without_download(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import d3rlpy.datasets

    monkeypatch.chdir(tmp_path)  # d3rlpy's data directory is relative to the working directory
    path = tmp_path / d3rlpy.datasets.DATA_DIRECTORY / "pendulum_replay_v1.1.0.h5"
    arrays = write_d3rlpy_v1(path, np.random.default_rng(0))
    assert os.environ["SAMRL_OFFLINE"] == "1"  # any download attempt would fail
    info = describe_dataset("d3rlpy:pendulum-replay")
    assert info.env_id == "Pendulum-v1" and not info.discrete
    ds = load_dataset("d3rlpy:pendulum-replay")
    assert ds.path == pathlib.Path(d3rlpy.datasets.DATA_DIRECTORY) / path.name
    assert len(ds.train.episodes) == 2 and not ds.train.episodes[0].terminated
    np.testing.assert_array_equal(ds.train.episodes[0].observations, arrays["observations"][:200])
    config = tiny_config(
        tmp_path,
        dataset={"name": "d3rlpy:pendulum-replay"},
        algo={"name": "td3_plus_bc", "params": {"batch_size": 16}},
        train={"n_steps": 10, "n_steps_per_epoch": 10, "eval_episodes": 1},
    )
    code, _, err = run_cli(["train", "--config", str(write_config(tmp_path, config))], capsys)
    assert code == 0, err
    import pandas as pd

    evals = pd.read_csv(next((tmp_path / "runs").glob("*/*/eval.csv")))
    # Rolled out in Pendulum-v1: 200 steps of reward in [-16.3, 0].
    assert len(evals) == 1 and -16.3 * 200 <= evals["return_mean"][0] <= 0
    missing = run_cli(["data", "info", "d3rlpy:cartpole-random"], capsys)
    assert missing[0] == 2 and "samrl data download d3rlpy:cartpole-random" in missing[2]


def test_missing_d3rlpy_dataset_offline_fails_validation(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tiny_config(tmp_path, dataset={"name": "d3rlpy:pendulum-random"})
    path = write_config(tmp_path, config)
    code, _, err = run_cli(["train", "--config", str(path), "--dry-run"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "dataset.name" in err and "samrl data download d3rlpy:pendulum-random" in err
