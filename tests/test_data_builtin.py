"""Built-in classic datasets, references, normalized scores, the episode split."""

from __future__ import annotations

import pathlib

import gymnasium as gym
import h5py
import numpy as np
import pytest

from samrl.data import (
    DatasetInfo,
    builtin_names,
    dataset_cache_dir,
    describe_dataset,
    load_dataset,
    make_eval_env,
    normalized_score,
)
from samrl.data.classic import CLASSIC_TASKS, reference_returns
from samrl.data.references import CLASSIC_REFERENCES
from samrl.data.split import held_out_mask
from samrl.data.transitions import Transitions
from samrl.errors import DatasetError


@pytest.fixture(autouse=True)
def _cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_names_and_cache_dir(_cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = builtin_names()
    for family in ("pendulum", "cartpole"):
        assert {f"{family}-{lvl}" for lvl in ("random", "medium", "expert", "replay")} <= set(names)
    assert "hopper-medium-replay" in names and "walker2d-medium-expert" in names
    assert dataset_cache_dir() == _cache
    monkeypatch.delenv("SAMRL_DATA_DIR")
    assert dataset_cache_dir() == pathlib.Path.home() / ".cache/samrl/datasets"


def test_describe_is_cheap_and_right(_cache: pathlib.Path) -> None:
    info = describe_dataset("cartpole-expert")
    assert info.discrete and info.env_id == "CartPole-v1" and info.kind == "builtin"
    assert (info.ref_min_return, info.ref_max_return) == CLASSIC_REFERENCES["cartpole"]
    hopper = describe_dataset("hopper-medium")
    assert (hopper.ref_min_return, hopper.ref_max_return) == (-20.272305, 3234.3)
    assert not _cache.exists()  # nothing generated


@pytest.mark.parametrize("family", ["pendulum", "cartpole"])
def test_recorded_references_reproduce(family: str) -> None:
    assert reference_returns(CLASSIC_TASKS[family]) == pytest.approx(CLASSIC_REFERENCES[family])


@pytest.mark.parametrize("family", ["pendulum", "cartpole"])
def test_medium_between_random_and_expert(family: str) -> None:
    means = {}
    for level in ("random", "medium", "expert", "replay"):
        ds = load_dataset(f"{family}-{level}", size=12_000, seed=3)
        means[level] = ds.metadata["behaviour_return_mean"]
        assert len(ds.metadata["behaviour_returns"]) > 0
    lo, hi = CLASSIC_REFERENCES[family]
    assert means["random"] < means["medium"] < means["expert"]
    # "clearly between": at least 20% of the random-expert gap away from either end
    gap = hi - lo
    assert lo + 0.2 * gap < means["medium"] < hi - 0.2 * gap
    assert means["random"] < means["replay"] < means["expert"]


def test_generation_is_deterministic_and_cached(_cache: pathlib.Path) -> None:
    a = load_dataset("pendulum-replay", size=2000, seed=7)
    files = list(_cache.glob("*.hdf5"))
    assert [p.name for p in files] == ["pendulum-replay_n2000_s7_g1.hdf5"]
    mtime = files[0].stat().st_mtime_ns
    b = load_dataset("pendulum-replay", size=2000, seed=7)
    assert files[0].stat().st_mtime_ns == mtime  # read from the cache, not regenerated
    files[0].unlink()
    c = load_dataset("pendulum-replay", size=2000, seed=7)
    for x, y in ((a, b), (a, c)):
        for ex, ey in zip(x.train.episodes, y.train.episodes, strict=True):
            np.testing.assert_array_equal(ex.observations, ey.observations)
            np.testing.assert_array_equal(ex.actions, ey.actions)
    d = load_dataset("pendulum-replay", size=2000, seed=8)
    assert not np.array_equal(a.train.episodes[0].observations, d.train.episodes[0].observations)


def test_generated_file_layout_and_gymnasium_dynamics(_cache: pathlib.Path) -> None:
    ds = load_dataset("cartpole-medium", size=1500, seed=0)
    assert ds.path is not None
    with h5py.File(ds.path) as f:
        keys = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
        assert all(k in f for k in keys)
        n = f["rewards"].shape[0]
        assert n == 1500
        assert not np.any(f["terminals"][()] & f["timeouts"][()])
        assert f["metadata"].attrs["env_id"] == "CartPole-v1"
        obs, act, nxt = f["observations"][()], f["actions"][()], f["next_observations"][()]
        term = f["terminals"][()]
    # Replaying the first episode's actions in gymnasium gives the same states.
    env = gym.make("CartPole-v1")
    first, _ = env.reset(seed=0)
    np.testing.assert_array_equal(first, obs[0])
    for t in range(int(np.argmax(term)) + 1):
        state, *_ = env.step(int(act[t]))
        np.testing.assert_array_equal(state, nxt[t])
    assert ds.metadata["seed"] == 0 and ds.metadata["generator_version"] == 1


def test_normalized_score_hand_values() -> None:
    hopper = describe_dataset("hopper-medium")
    assert normalized_score(-20.272305, hopper) == pytest.approx(0.0)
    assert normalized_score(3234.3, hopper) == pytest.approx(100.0)
    # 100 * (1627.0 + 20.272305) / (3234.3 + 20.272305) = 50.6141...
    assert normalized_score(1627.0, hopper) == pytest.approx(50.61409, abs=1e-4)
    cheetah = describe_dataset("d4rl:halfcheetah-medium-v2")
    # 100 * (4770.3 + 280.178953) / (12135.0 + 280.178953) = 40.6798...
    assert normalized_score(4770.3, cheetah) == pytest.approx(40.67987, abs=1e-4)
    info = DatasetInfo("x", "file", False, None, None, None)
    assert normalized_score(1.0, info) is None


def _episodes(lengths: list[int]) -> Transitions:
    n = sum(lengths)
    ends = np.cumsum(lengths) - 1
    timeouts = np.zeros(n, bool)
    timeouts[ends] = True
    return Transitions(
        observations=np.arange(n, dtype=np.float32)[:, None],
        actions=np.zeros((n, 1), np.float32),
        rewards=np.zeros(n, np.float32),
        terminals=np.zeros(n, bool),
        timeouts=timeouts,
    )


def test_split_is_episode_level_seeded_and_deterministic() -> None:
    data = _episodes([5, 3, 8, 2, 6, 4, 7, 1, 9, 5])
    a = held_out_mask(data, 0.3, seed=1)
    np.testing.assert_array_equal(a, held_out_mask(data, 0.3, seed=1))
    assert not np.array_equal(a, held_out_mask(data, 0.3, seed=2))
    starts = np.concatenate([[0], data.episode_ends[:-1]])
    per_episode = [set(a[s:e]) for s, e in zip(starts, data.episode_ends, strict=True)]
    assert all(len(s) == 1 for s in per_episode)  # whole episodes only
    assert sum(s == {True} for s in per_episode) == 3
    assert not held_out_mask(data, 0.0, seed=1).any()


def test_load_with_test_fraction(_cache: pathlib.Path) -> None:
    ds = load_dataset("cartpole-random", size=3000, seed=0, test_fraction=0.25)
    again = load_dataset("cartpole-random", size=3000, seed=0, test_fraction=0.25)
    n_total = len(ds.train.episodes) + len(ds.test_episodes)
    assert len(ds.test_episodes) == round(0.25 * n_total)
    steps = sum(len(e.rewards) for e in ds.train.episodes) + sum(
        len(e.rewards) for e in ds.test_episodes
    )
    assert steps == 3000
    for x, y in zip(ds.test_episodes, again.test_episodes, strict=True):
        np.testing.assert_array_equal(x.observations, y.observations)
    with pytest.raises(DatasetError, match="test_fraction"):
        load_dataset("cartpole-random", size=3000, test_fraction=1.0)


def test_make_eval_env() -> None:
    env = make_eval_env(describe_dataset("pendulum-medium"), seed=0)
    assert env.spec is not None and env.spec.id == "Pendulum-v1"
    hopper = make_eval_env(describe_dataset("d4rl:hopper-medium-v2"), seed=1)
    assert hopper.observation_space.shape == (11,)
    with pytest.raises(DatasetError, match="no evaluation environment"):
        make_eval_env(DatasetInfo("file:x", "file", False, None, None, None), seed=0)
