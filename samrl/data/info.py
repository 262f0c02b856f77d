"""The records the public API hands out."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset without generating or reading it."""

    spec: str
    kind: str  # "builtin" | "d4rl" | "minari" | "file"
    discrete: bool
    env_id: str | None
    ref_min_return: float | None
    ref_max_return: float | None
    notes: tuple[str, ...] = ()


@dataclass
class LoadedDataset:
    info: DatasetInfo
    train: Any  # d3rlpy.dataset.ReplayBuffer (an MDPDataset of the training episodes)
    test_episodes: list[Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    path: pathlib.Path | None = None
    #: The training rows' next observations when d3rlpy's (the next row's observation) would
    #: be wrong: observations or next observations are corrupted (samrl/data/corruption.py).
    next_observations: Any = None
    #: What dataset.corruption did (key, cache file, attacker), for the run directory.
    corruption: dict[str, Any] | None = None
    #: All transitions as trained on (corrupted training rows, clean held-out rows): set
    #: only when corrupted (`samrl data export`, `data info --config`).
    transitions: Any = None
