"""`dataset.seed: run` and `dataset.corruption.seed: run` tie the data draw and the corruption
draw to the run's train.seed: two seeds draw different data, one seed the same bytes."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import pytest
from helpers.d4rl import write_d4rl_file

from samrl.config.resolve import resolve
from samrl.data import load_dataset
from samrl.errors import ConfigError

RANDOM_OBS = {"mode": "random", "fields": ["observations"], "rate": 0.3, "seed": "run"}


def config(train_seed: int, dataset: dict[str, Any]) -> Any:
    raw = {
        "algo": {"name": "iql"},
        "dataset": dataset,
        "optim": {"name": "adam"},
        "train": {"n_steps": 10, "n_steps_per_epoch": 10, "seed": train_seed},
    }
    return resolve(raw, source="test", check_dataset=False)


def training_bytes(train_seed: int, dataset: dict[str, Any]) -> bytes:
    """The bytes of the observations a run with this seed trains on."""
    ds = config(train_seed, dataset).dataset
    loaded = load_dataset(
        ds.name,
        size=ds.size,
        seed=ds.seed,
        test_fraction=ds.test_fraction,
        corruption=ds.corruption,
    )
    episodes = loaded.train.episodes
    return np.concatenate([e.observations for e in episodes]).tobytes()


def test_run_stands_for_the_train_seed() -> None:
    resolved = config(7, {"name": "pendulum-random", "seed": "run", "corruption": RANDOM_OBS})
    assert resolved.dataset.seed == 7 and resolved.dataset.corruption.seed == 7
    # a corruption without its own seed follows dataset.seed, run or not
    no_seed = {k: v for k, v in RANDOM_OBS.items() if k != "seed"}
    resolved = config(3, {"name": "pendulum-random", "seed": "run", "corruption": no_seed})
    assert resolved.dataset.corruption.seed == 3
    # the recorded config holds the number: its hash is that of the seed written out
    written = {**RANDOM_OBS, "seed": 7}
    explicit = config(7, {"name": "pendulum-random", "seed": 7, "corruption": written})
    tied = config(7, {"name": "pendulum-random", "seed": "run", "corruption": RANDOM_OBS})
    assert tied.result_hash() == explicit.result_hash()
    with pytest.raises(ConfigError, match=r"dataset\.seed: must be .* or 'run'"):
        config(0, {"name": "pendulum-random", "seed": "runs"})


def test_builtin_data_differ_between_seeds_and_repeat_for_one() -> None:
    dataset = {"name": "pendulum-random", "size": 1000, "seed": "run"}
    first, again, other = (training_bytes(s, dataset) for s in (0, 0, 1))
    assert first == again and first != other


def test_file_data_split_differs_between_seeds_and_repeats_for_one(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.hdf5"
    write_d4rl_file(path, obs=3, act=2)  # 6 episodes of 100 steps
    dataset = {"name": f"file:{path}", "seed": "run", "test_fraction": 0.4}
    draws = {s: training_bytes(s, dataset) for s in range(4)}
    assert training_bytes(0, dataset) == draws[0]
    assert len(set(draws.values())) > 1  # which episodes are held out follows the seed


def test_corruption_differs_between_seeds_and_repeats_for_one(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.hdf5"
    write_d4rl_file(path, obs=3, act=2)
    dataset = {"name": f"file:{path}", "corruption": RANDOM_OBS}  # the file itself is fixed
    first, again, other = (training_bytes(s, dataset) for s in (0, 0, 1))
    assert first == again and first != other
