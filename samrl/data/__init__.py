"""Datasets: built-in generators, D4RL / Minari / plain-file loaders, references, splits.

info = describe_dataset("pendulum-medium")       # cheap: nothing generated or read
ds = load_dataset("pendulum-medium", test_fraction=0.1, seed=0)
ds.train                                          # d3rlpy MDPDataset of training episodes
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym

from samrl.data.builtin import BUILTINS, dataset_cache_dir, ensure_builtin
from samrl.data.hdf5 import read_d4rl_hdf5
from samrl.data.info import DatasetInfo, LoadedDataset
from samrl.data.provenance import verify_pin
from samrl.data.references import normalized
from samrl.data.sources import describe, local_file, read_user_data
from samrl.data.split import build_split
from samrl.errors import DatasetError

__all__ = [
    "DatasetInfo",
    "LoadedDataset",
    "builtin_names",
    "dataset_cache_dir",
    "describe_dataset",
    "load_dataset",
    "make_eval_env",
    "normalized_score",
]


def builtin_names() -> list[str]:
    return list(BUILTINS)


def describe_dataset(spec: str) -> DatasetInfo:
    """What `spec` is, without generating anything (user files are only peeked into)."""
    return describe(spec)


def load_dataset(
    spec: str,
    *,
    size: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.0,
    progress: bool = False,
    sha256: str | None = None,
) -> LoadedDataset:
    """Load (built-ins: generate and cache on first use) and split by episodes.

    `size`: for built-ins the number of generated transitions; for users' files the first
    `size` transitions are kept. `seed` seeds generation and the split. `sha256` pins the
    file: a different one is a DatasetError before it is read.
    """
    if size is not None and size < 1:
        raise DatasetError(f"dataset.size: must be >= 1, got {size}")
    info = describe(spec)
    if info.kind == "builtin":
        path = ensure_builtin(BUILTINS[spec], size=size, seed=seed, progress=progress)
        verify_pin(spec, path, sha256)
        data, metadata = read_d4rl_hdf5(path, discrete=info.discrete, next_observations=False)
    else:
        if sha256 is not None:
            verify_pin(spec, local_file(spec, progress=progress), sha256)
        data, metadata, path = read_user_data(info, progress=progress, next_observations=False)
        if size is not None:
            data = data.head(size)
    if data.notes:
        info = dataclasses.replace(info, notes=info.notes + tuple(data.notes))
    train, test_episodes = build_split(
        data, discrete=info.discrete, test_fraction=test_fraction, seed=seed, metadata=metadata
    )
    return LoadedDataset(info, train, test_episodes, metadata, path)


def make_eval_env(info: DatasetInfo, seed: int) -> gym.Env:
    """The gymnasium env to roll policies out in, seeded."""
    if info.env_id is None:
        raise DatasetError(f"dataset '{info.spec}': no evaluation environment is known")
    try:
        env = gym.make(info.env_id)
    except gym.error.Error as exc:
        raise DatasetError(
            f"dataset '{info.spec}': cannot make env '{info.env_id}' ({exc})"
        ) from exc
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def normalized_score(mean_return: float, info: DatasetInfo) -> float | None:
    """100 * (R - min) / (max - min) with the dataset's references; None without them."""
    if info.ref_min_return is None or info.ref_max_return is None:
        return None
    if info.ref_max_return == info.ref_min_return:
        return None
    return normalized(mean_return, info.ref_min_return, info.ref_max_return)
