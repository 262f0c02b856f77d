"""Users' files: D4RL layout, Minari layout, d3rlpy .h5 buffers; bad files; spec parsing."""

from __future__ import annotations

import json
import pathlib
import sys

import h5py
import numpy as np
import pytest
from d3rlpy.dataset import MDPDataset

from samrl.data import describe_dataset, load_dataset
from samrl.data.hdf5 import read_d4rl_hdf5, write_d4rl_hdf5
from samrl.data.sources import d4rl_candidate_paths
from samrl.data.transitions import Transitions
from samrl.errors import DatasetError


def small_arrays(n: int = 60, obs_dim: int = 3, act_dim: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    terminals[[9, 29]] = True
    timeouts[[19, 44, n - 1]] = True
    return {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
        "next_observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
    }


def write_raw_hdf5(path: pathlib.Path, arrays: dict) -> pathlib.Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def flat_train_arrays(ds: MDPDataset) -> dict[str, np.ndarray]:
    eps = ds.episodes
    return {
        "observations": np.concatenate([e.observations for e in eps]),
        "actions": np.concatenate([e.actions for e in eps]),
        "rewards": np.concatenate([e.rewards for e in eps])[:, 0],
    }


def test_d4rl_layout_round_trip(tmp_path: pathlib.Path) -> None:
    arrays = small_arrays()
    path = tmp_path / "mine.hdf5"
    write_d4rl_hdf5(path, Transitions(**arrays), {"env_id": "Hopper-v5", "returns": [1.0, 2.5]})
    data, meta = read_d4rl_hdf5(path)
    for key, value in arrays.items():
        np.testing.assert_array_equal(getattr(data, key), value)
    assert meta == {"env_id": "Hopper-v5", "returns": [1.0, 2.5]}
    with h5py.File(path) as f:  # readable by other tools: plain datasets and attrs
        assert f["metadata"].attrs["env_id"] == "Hopper-v5"
        np.testing.assert_array_equal(f["metadata/returns"][()], [1.0, 2.5])

    loaded = load_dataset(f"file:{path}")
    flat = flat_train_arrays(loaded.train)
    for key in ("observations", "actions", "rewards"):
        np.testing.assert_array_equal(flat[key], arrays[key])
    assert [e.terminated for e in loaded.train.episodes] == [True, False, True, False, False]
    assert loaded.info.env_id == "Hopper-v5" and loaded.path == path


def test_d4rl_spec_finds_d4rl_file_names(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    assert d4rl_candidate_paths("hopper-medium-replay-v2")[0] == (
        tmp_path / "hopper_medium_replay-v2.hdf5"
    )
    arrays = small_arrays(obs_dim=11, act_dim=3)
    # D4RL files may flag a step as both terminal and timeout; d3rlpy needs one of them.
    arrays["timeouts"][9] = True
    write_raw_hdf5(tmp_path / "hopper_medium-v2.hdf5", arrays)
    ds = load_dataset("d4rl:hopper-medium-v2")
    assert ds.info.env_id == "Hopper-v5" and ds.info.ref_max_return == 3234.3
    assert any("Hopper-v2" in n for n in ds.info.notes)
    assert any("both terminal and timeout" in n for n in ds.info.notes)
    assert ds.train.episodes[0].terminated
    assert ds.train.transition_count > 0


def test_missing_d4rl_file_names_expected_path(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    with pytest.raises(DatasetError) as err:
        load_dataset("d4rl:walker2d-medium-expert-v2")
    message = str(err.value)
    assert str(tmp_path / "walker2d_medium_expert-v2.hdf5") in message
    assert "samrl data download d4rl:walker2d-medium-expert-v2" in message
    assert "SAMRL_OFFLINE" in message and "\n" not in message


def write_minari(root: pathlib.Path, dataset_id: str, episodes: list[dict], meta: dict) -> None:
    base = root / dataset_id
    (base / "data").mkdir(parents=True)
    with h5py.File(base / "data" / "main_data.hdf5", "w") as f:
        for i, ep in enumerate(episodes):
            group = f.create_group(f"episode_{i}")
            for key, value in ep.items():
                group.create_dataset(key, data=value)
    (base / "metadata.json").write_text(json.dumps(meta))


def minari_episode(steps: int, terminated: bool, rng: np.random.Generator) -> dict:
    terminations = np.zeros(steps, bool)
    truncations = np.zeros(steps, bool)
    (terminations if terminated else truncations)[-1] = True
    return {
        "observations": rng.normal(size=(steps + 1, 4)).astype(np.float32),
        "actions": rng.integers(0, 2, size=steps),
        "rewards": np.ones(steps, np.float32),
        "terminations": terminations,
        "truncations": truncations,
    }


@pytest.fixture
def no_minari_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import minari` fails as it does without the samrl[minari] extra: the h5py fallback."""
    monkeypatch.setitem(sys.modules, "minari", None)


@pytest.mark.usefixtures("no_minari_extra")
def test_minari_round_trip(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    rng = np.random.default_rng(1)
    episodes = [minari_episode(5, True, rng), minari_episode(7, False, rng)]
    meta = {
        "env_spec": json.dumps({"id": "CartPole-v1"}),
        "action_space": json.dumps({"type": "Discrete", "n": 2}),
        "ref_min_score": 10.0,
        "ref_max_score": 500.0,
    }
    write_minari(tmp_path, "classic/cartpole/test-v0", episodes, meta)
    info = describe_dataset("minari:classic/cartpole/test-v0")
    assert info.discrete and info.env_id == "CartPole-v1"
    assert (info.ref_min_return, info.ref_max_return) == (10.0, 500.0)
    ds = load_dataset("minari:classic/cartpole/test-v0")
    assert [e.terminated for e in ds.train.episodes] == [True, False]
    for ep, raw in zip(ds.train.episodes, episodes, strict=True):
        np.testing.assert_array_equal(ep.observations, raw["observations"][:-1])
        np.testing.assert_array_equal(ep.actions[:, 0], raw["actions"])
    assert ds.train.dataset_info.action_size == 2


@pytest.mark.usefixtures("no_minari_extra")
def test_minari_bad_observation_count(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ep = minari_episode(5, True, np.random.default_rng(0))
    ep["observations"] = ep["observations"][:-1]  # T instead of T+1
    write_minari(tmp_path, "x/y-v0", [ep], {})
    with pytest.raises(DatasetError, match=r"main_data\.hdf5:episode_0.*steps \+ 1"):
        load_dataset("minari:x/y-v0")


@pytest.mark.usefixtures("no_minari_extra")
def test_missing_minari_without_extra_says_what_to_install(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    monkeypatch.delenv("SAMRL_OFFLINE")
    with pytest.raises(DatasetError, match=r"pip install 'samrl\[minari\]'") as err:
        describe_dataset("minari:mujoco/hopper/medium-v0")
    assert str(tmp_path / "mujoco/hopper/medium-v0/data/main_data.hdf5") in str(err.value)
    assert "\n" not in str(err.value)


def test_d3rlpy_h5_round_trip(tmp_path: pathlib.Path) -> None:
    arrays = small_arrays()
    original = MDPDataset(
        arrays["observations"],
        arrays["actions"],
        arrays["rewards"],
        arrays["terminals"].astype(np.float32),
        arrays["timeouts"].astype(np.float32),
    )
    path = tmp_path / "buffer.h5"
    with path.open("w+b") as f:  # h5py needs a readable handle too
        original.dump(f)
    loaded = load_dataset(f"file:{path}")
    assert len(loaded.train.episodes) == len(original.episodes)
    for a, b in zip(loaded.train.episodes, original.episodes, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        assert a.terminated == b.terminated


def _bad_files() -> dict[str, tuple[object, str]]:
    good = small_arrays()
    nan = dict(good, observations=good["observations"].copy())
    nan["observations"][3, 1] = np.nan
    inf = dict(good, rewards=good["rewards"].copy())
    inf["rewards"][0] = np.inf
    return {
        "not_hdf5": ("this is not hdf5", "not a readable HDF5"),
        "missing_key": ({k: v for k, v in good.items() if k != "rewards"}, "missing dataset"),
        "length_mismatch": (dict(good, actions=good["actions"][:-3]), "'actions' has 57 rows"),
        "nan": (nan, "'observations' contains NaN"),
        "inf": (inf, "'rewards' contains NaN or inf"),
        "bad_shape": (dict(good, observations=good["observations"][:, :, None]), "2-D"),
        "bad_next_obs": (
            dict(good, next_observations=good["next_observations"][:, :2]),
            "'next_observations' has shape",
        ),
        "empty": ({k: v[:0] for k, v in good.items()}, "empty"),
    }


@pytest.mark.parametrize("case", list(_bad_files()))
def test_bad_file_gives_one_line_error_with_path(tmp_path: pathlib.Path, case: str) -> None:
    content, expected = _bad_files()[case]
    path = tmp_path / f"{case}.hdf5"
    if isinstance(content, str):
        path.write_text(content)
    else:
        write_raw_hdf5(path, content)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"file:{path}")
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_truncated_file(tmp_path: pathlib.Path) -> None:
    path = write_raw_hdf5(tmp_path / "cut.hdf5", small_arrays(n=5000))
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(DatasetError, match=r"cut\.hdf5"):
        load_dataset(f"file:{path}")


def test_missing_user_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        describe_dataset(f"file:{tmp_path / 'nope.hdf5'}")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pendulum-meduim", "did you mean 'pendulum-medium'"),
        ("d4lr:hopper-medium-v2", "did you mean 'd4rl'"),
        ("d4rl:", "nothing after"),
    ],
)
def test_spec_errors(spec: str, expected: str) -> None:
    with pytest.raises(DatasetError, match=expected):
        describe_dataset(spec)


def test_size_truncates_user_file(tmp_path: pathlib.Path) -> None:
    path = write_raw_hdf5(tmp_path / "x.hdf5", small_arrays())
    ds = load_dataset(f"file:{path}", size=15)
    assert sum(len(e.rewards) for e in ds.train.episodes) == 15
    assert [e.terminated for e in ds.train.episodes] == [True, False]
