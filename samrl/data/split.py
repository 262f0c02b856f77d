"""Episode-level train/test split and the d3rlpy objects built from it."""

from __future__ import annotations

from typing import Any

import numpy as np
from d3rlpy.constants import ActionSpace
from d3rlpy.dataset import EpisodeGenerator, MDPDataset

from samrl.data.transitions import Transitions
from samrl.errors import DatasetError


def held_out_mask(data: Transitions, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean per step: True where the step belongs to a held-out episode."""
    if not 0.0 <= test_fraction < 1.0:
        raise DatasetError(f"dataset.test_fraction: must be in [0, 1), got {test_fraction}")
    ends = data.episode_ends
    n_episodes = len(ends)
    n_test = round(test_fraction * n_episodes)
    if test_fraction > 0:
        n_test = max(1, n_test)
    if n_test >= n_episodes and n_test > 0:
        raise DatasetError(
            f"dataset.test_fraction: {test_fraction} of {n_episodes} episode(s) leaves no "
            "training episodes"
        )
    episode_of_step = np.repeat(np.arange(n_episodes), np.diff(np.concatenate([[0], ends])))
    chosen = np.random.default_rng(seed).permutation(n_episodes)[:n_test]
    is_test_episode = np.zeros(n_episodes, bool)
    is_test_episode[chosen] = True
    return is_test_episode[episode_of_step]


def action_space_of(
    data: Transitions, discrete: bool, metadata: dict[str, Any]
) -> tuple[ActionSpace, int]:
    if discrete:
        recorded = metadata.get("action_size")
        size = int(recorded) if isinstance(recorded, int) else int(data.actions.max()) + 1
        return ActionSpace.DISCRETE, size
    return ActionSpace.CONTINUOUS, int(data.actions.shape[1])


def build_split(
    data: Transitions,
    *,
    discrete: bool,
    test_fraction: float,
    seed: int,
    metadata: dict[str, Any] | None = None,
) -> tuple[MDPDataset, list[Any]]:
    is_test = held_out_mask(data, test_fraction, seed)
    space, size = action_space_of(data, discrete, metadata or {})
    train = ~is_test

    def rows(
        array: np.ndarray,
    ) -> np.ndarray:  # no copy of the whole dataset when nothing is held out
        return array[train] if is_test.any() else array

    dataset = MDPDataset(
        observations=rows(data.observations),
        actions=rows(data.actions),
        rewards=rows(data.rewards),
        terminals=rows(data.terminals).astype(np.float32),
        timeouts=rows(data.timeouts).astype(np.float32),
        action_space=space,
        action_size=size,
    )
    test_episodes: list[Any] = []
    if is_test.any():
        test_episodes = list(
            EpisodeGenerator(
                observations=data.observations[is_test],
                actions=data.actions[is_test],
                rewards=data.rewards[is_test],
                terminals=data.terminals[is_test].astype(np.float32),
                timeouts=data.timeouts[is_test].astype(np.float32),
            )()
        )
    return dataset, test_episodes
