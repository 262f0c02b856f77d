"""Datasets: built-in generators, D4RL / Minari / plain-file loaders, references, splits.

info = describe_dataset("pendulum-medium")       # cheap: nothing generated or read
ds = load_dataset("pendulum-medium", test_fraction=0.1, seed=0)
ds.train                                          # d3rlpy MDPDataset of training episodes
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import gymnasium as gym

from samrl.data.builtin import BUILTINS, dataset_cache_dir, ensure_builtin
from samrl.data.corruption import clean_next_observations, corrupted_cached
from samrl.data.hdf5 import read_d4rl_hdf5
from samrl.data.info import DatasetInfo, LoadedDataset
from samrl.data.provenance import verify_pin
from samrl.data.references import normalized
from samrl.data.sources import describe, local_file, read_user_data
from samrl.data.split import build_split, held_out_mask
from samrl.data.transitions import Transitions
from samrl.errors import DatasetError

__all__ = [
    "DatasetInfo",
    "LoadedDataset",
    "builtin_names",
    "dataset_cache_dir",
    "describe_dataset",
    "load_dataset",
    "load_transitions",
    "make_eval_env",
    "normalized_score",
    "training_transitions",
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
    corruption: Any = None,
) -> LoadedDataset:
    """Load (built-ins: generate and cache on first use) and split by episodes.

    `size`: for built-ins the number of generated transitions; for users' files the first
    `size` transitions are kept. `seed` seeds generation and the split. `sha256` pins the
    file: a different one is a DatasetError before it is read. `corruption`: a resolved
    dataset.corruption section; its training rows are corrupted as RIQL does
    (samrl/data/corruption.py), held-out episodes stay clean.
    """
    # Clean data are trained on without the file's next observations (d3rlpy's are the next
    # row's observation); corruption reads them (the episodes' last next observations, and
    # the clean values it perturbs) and keeps its own where d3rlpy's would be wrong.
    info, data, metadata, path = load_transitions(
        spec,
        size=size,
        seed=seed,
        progress=progress,
        sha256=sha256,
        next_observations=corruption is not None,
    )
    if corruption is None:
        train, test_episodes = build_split(
            data, discrete=info.discrete, test_fraction=test_fraction, seed=seed, metadata=metadata
        )
        return LoadedDataset(info, train, test_episodes, metadata, path)
    is_test = held_out_mask(data, test_fraction, seed)
    data, record = corrupted_cached(data, corruption, ~is_test, discrete=info.discrete, source=spec)
    next_observations = None
    if {"observations", "next_observations"} & set(corruption.fields):
        # d3rlpy would derive next observations from the (corrupted) next row
        next_observations = data.next_observations[~is_test]  # type: ignore[index]
    train, test_episodes = build_split(
        data, discrete=info.discrete, test_fraction=test_fraction, seed=seed, metadata=metadata
    )
    return LoadedDataset(
        info, train, test_episodes, metadata, path, next_observations, record, data
    )


def training_transitions(
    spec: str,
    *,
    size: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.0,
    sha256: str | None = None,
    corruption: Any = None,
) -> tuple[DatasetInfo, Transitions, Transitions, dict[str, Any] | None, pathlib.Path | None]:
    """(info, clean, as trained on) training rows of a dataset, next observations always
    set, the corruption's record (None when clean) and the file read (None when there is
    none): what `samrl data export` writes and `samrl data info --config` describes."""
    info, data, _, path = load_transitions(spec, size=size, seed=seed, progress=True, sha256=sha256)
    is_test = held_out_mask(data, test_fraction, seed)
    clean = dataclasses.replace(data, next_observations=clean_next_observations(data))
    trained, record = clean, None
    if corruption is not None:
        trained, record = corrupted_cached(
            data, corruption, ~is_test, discrete=info.discrete, source=spec
        )
    return info, clean.select(~is_test), trained.select(~is_test), record, path


def load_transitions(
    spec: str,
    *,
    size: int | None = None,
    seed: int = 0,
    progress: bool = False,
    sha256: str | None = None,
    next_observations: bool = True,
) -> tuple[DatasetInfo, Transitions, dict[str, Any], pathlib.Path | None]:
    """The clean transitions of a dataset (built-ins generated and cached on first use).
    `sha256` pins the file (a different one is a DatasetError before it is read);
    `next_observations=False` leaves a D4RL-layout file's next observations unread."""
    if size is not None and size < 1:
        raise DatasetError(f"dataset.size: must be >= 1, got {size}")
    info = describe(spec)
    if info.kind == "builtin":
        path = ensure_builtin(BUILTINS[spec], size=size, seed=seed, progress=progress)
        verify_pin(spec, path, sha256)
        data, metadata = read_d4rl_hdf5(
            path, discrete=info.discrete, next_observations=next_observations
        )
    else:
        if sha256 is not None:
            verify_pin(spec, local_file(spec, progress=progress), sha256)
        data, metadata, path = read_user_data(
            info, progress=progress, next_observations=next_observations
        )
        if size is not None:
            data = data.head(size)
    if data.notes:
        info = dataclasses.replace(info, notes=info.notes + tuple(data.notes))
    return info, data, metadata, path


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
