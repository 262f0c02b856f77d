"""d3rlpy's own classic-control datasets (`d3rlpy:cartpole-replay`, ...): the file is fetched
into d3rlpy's data directory under d3rlpy's file name by samrl's downloader (resumable,
validated), then loaded by d3rlpy.datasets.get_cartpole / get_pendulum themselves, which find it
there and do not download again."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from samrl.data.info import DatasetInfo
from samrl.data.references import CLASSIC_REFERENCES
from samrl.data.remote import D3RLPY_DATASETS, D3rlpyDataset
from samrl.data.transitions import Transitions, concatenate, validated
from samrl.errors import DatasetError, unknown_name


def d3rlpy_dataset(name: str) -> D3rlpyDataset:
    if name not in D3RLPY_DATASETS:
        raise DatasetError(unknown_name("d3rlpy dataset", name, D3RLPY_DATASETS))
    return D3RLPY_DATASETS[name]


def describe_d3rlpy(spec: str, name: str) -> DatasetInfo:
    d = d3rlpy_dataset(name)
    lo, hi = CLASSIC_REFERENCES[d.family]
    return DatasetInfo(
        spec,
        "d3rlpy",
        d.discrete,
        d.env_id,
        lo,
        hi,
        (
            f"d3rlpy's {d.family} data; normalized scores use samrl's scripted random/expert "
            f"references for {d.env_id}",
        ),
    )


def fetch_d3rlpy(name: str, *, progress: bool = True) -> pathlib.Path:
    return d3rlpy_dataset(name).remote().fetch(progress=progress)


def read_d3rlpy(
    name: str, *, progress: bool = True
) -> tuple[Transitions, dict[str, Any], pathlib.Path]:
    import d3rlpy.datasets

    d = d3rlpy_dataset(name)
    path = fetch_d3rlpy(name, progress=progress)
    loader = (
        d3rlpy.datasets.get_cartpole if d.family == "cartpole" else d3rlpy.datasets.get_pendulum
    )
    try:
        buffer, env = loader(dataset_type=d.dataset_type)
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: d3rlpy could not read it ({exc})") from None
    env.close()
    data = buffer_transitions(buffer, str(path), discrete=d.discrete)
    return data, {"d3rlpy_dataset": name}, path


def buffer_transitions(buffer: Any, source: str, discrete: bool | None = None) -> Transitions:
    """A d3rlpy ReplayBuffer's episodes as transitions (the last step of an episode is a
    terminal when d3rlpy says the episode terminated, else a timeout)."""
    parts = []
    for i, ep in enumerate(buffer.episodes):
        obs = ep.observations
        if not isinstance(obs, np.ndarray):
            raise DatasetError(f"{source}: episode {i} has tuple observations (not supported)")
        n = len(ep.rewards)
        terminals = np.zeros(n, bool)
        timeouts = np.zeros(n, bool)
        (terminals if ep.terminated else timeouts)[-1] = True
        actions = ep.actions
        parts.append(
            validated(
                {
                    "observations": obs,
                    "actions": actions,
                    "rewards": ep.rewards.reshape(-1),
                    "terminals": terminals,
                    "timeouts": timeouts,
                },
                f"{source} (episode {i})",
                discrete=actions.dtype.kind in "iu" if discrete is None else discrete,
            )
        )
    if not parts:
        raise DatasetError(f"{source}: the dataset holds no episodes")
    return concatenate(parts)
