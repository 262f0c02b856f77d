"""Minibatches drawn with array indexing, bitwise identical to d3rlpy's ReplayBuffer sampling.

d3rlpy 2.8.1's `sample_transition_batch(B)` draws B indices with B scalar calls of
`np.random.randint(transition_count)` and builds each transition in Python; the legacy global
generator gives the same B integers (and ends in the same state) for one call
`np.random.randint(transition_count, size=B)` (tests/test_sampling.py checks it, and that every
array of every batch matches bitwise). Here the dataset's arrays are stacked once, the B indices
are drawn in that one call, and the batch is gathered by indexing:

- transitions (BasicTransitionPicker): observation/action/reward at the index, next
  observation/action at index + 1, or zeros on an episode's terminal step (terminal = 1 there;
  a timeout is not terminal and has the next observation), interval 1;
- trajectories (BasicTrajectorySlicer): the `length` steps ending at the index, zero-padded at the
  front, with returns-to-go, timesteps and masks computed as the slicer does.

Other pickers/slicers, tuple observations, or rewards of mixed dtypes fall back to d3rlpy's own
sampling (`Sampler.vectorized` says which one is used).

`next_observations` (optional, one row per stacked row, i.e. per row of the buffer's episodes in
order): next observations served instead of the next row's observation (corrupted data keep
them apart, samrl/data/corruption.py); there is no d3rlpy path to fall back to then.

The arrays stay in CPU numpy memory; d3rlpy converts each batch to tensors on the algorithm's
device, as it does for its own batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from d3rlpy.dataset import (
    BasicTrajectorySlicer,
    BasicTransitionPicker,
    ReplayBufferBase,
    TrajectoryMiniBatch,
    Transition,
    TransitionMiniBatch,
)


class Sampler:
    """Transition and trajectory minibatches of one replay buffer (which must not grow)."""

    def __init__(self, buffer: ReplayBufferBase, next_observations: np.ndarray | None = None):
        self.buffer = buffer
        self._arrays: _Arrays | None = None
        self._next_observations = next_observations
        self.vectorized = _supported(buffer)
        if next_observations is not None and not self.vectorized:
            raise ValueError("separate next observations need the vectorized sampler")
        if self.vectorized:
            self._arrays = _Arrays(buffer, next_observations)

    def transition_batch(self, batch_size: int) -> TransitionMiniBatch:
        a = self._current()
        if a is None or type(self.buffer.transition_picker) is not BasicTransitionPicker:
            if self._next_observations is not None:
                raise ValueError("separate next observations need BasicTransitionPicker")
            return self.buffer.sample_transition_batch(batch_size)
        index = np.random.randint(a.n, size=batch_size)
        row, next_row = a.row[index], a.next_row[index]
        if a.next_observations is None:
            next_observations = a.observations[next_row]
        else:  # zeros on a terminal step, as d3rlpy's picker gives
            next_observations = a.next_observations[
                np.where(next_row == a.zero_row, a.zero_row, row)
            ]
        return TransitionMiniBatch(
            observations=a.observations[row],
            actions=a.actions[row],
            rewards=a.rewards32[row],
            next_observations=next_observations,
            next_actions=a.actions[next_row],
            terminals=a.terminal[index][:, None],
            intervals=np.ones((batch_size, 1), dtype=np.float32),
            transitions=_LazyTransitions(self.buffer, index),
        )

    def trajectory_batch(self, batch_size: int, length: int) -> TrajectoryMiniBatch:
        a = self._current()
        if a is None or type(self.buffer.trajectory_slicer) is not BasicTrajectorySlicer:
            return self.buffer.sample_trajectory_batch(batch_size, length)
        index = np.random.randint(a.n, size=batch_size)
        end = a.step[index]  # time step of the last element within its episode
        time = end[:, None] + np.arange(1 - length, 1)  # (B, L), negative where padded
        valid = time >= 0
        row = np.where(valid, a.row[index][:, None] - end[:, None] + time, a.zero_row)
        rewards = a.rewards[row]  # episode dtype, zeros where padded
        terminals = np.zeros((batch_size, length, 1), dtype=np.float32)
        terminals[:, -1, 0] = a.terminal[index]
        return TrajectoryMiniBatch(
            observations=a.observations[row],
            actions=a.actions[row],
            rewards=rewards.astype(np.float32),
            returns_to_go=self._returns_to_go(a, index, end, rewards, valid, length),
            terminals=terminals,
            timesteps=np.where(valid, time + 1, 0).astype(np.float32),
            masks=valid.astype(np.float32),
            length=length,
        )

    def _current(self) -> _Arrays | None:
        a = self._arrays
        if a is not None and a.n != self.buffer.transition_count:
            self._arrays = a = _Arrays(self.buffer, self._next_observations)  # it grew
        return a

    @staticmethod
    def _returns_to_go(
        a: _Arrays,
        index: np.ndarray,
        end: np.ndarray,
        rewards: np.ndarray,
        valid: np.ndarray,
        length: int,
    ) -> np.ndarray:
        """The slicer's ret - cumsum(r[start:]) + r[start:] over the window, bitwise.

        ret = np.sum(r[start:]) (numpy's pairwise sum over the rest of the episode) is computed
        by the same call and cached per start row. The cumulative sum runs over the padded
        window with the padding set to -0.0, the exact additive identity of IEEE floats, so each
        prefix equals the slicer's own (which starts at `start`), signed zeros included.
        """
        start_row = a.row[index] - np.minimum(end, length - 1)
        ret = a.suffix_sums(start_row)
        padded = np.where(valid[..., None], rewards, rewards.dtype.type(-0.0))
        rtg = ret[:, None, None] - np.cumsum(padded, axis=1) + rewards
        return np.where(valid[..., None], rtg, 0).astype(np.float32)


class _Arrays:
    """The buffer's episodes stacked once (float32, one zero row at the end for padding)."""

    def __init__(self, buffer: ReplayBufferBase, next_observations: np.ndarray | None = None):
        episodes: list[Any] = []
        first_row: dict[int, int] = {}
        rows = 0
        n = buffer.transition_count
        self.n = n
        row = np.empty(n, dtype=np.int64)
        step = np.empty(n, dtype=np.int64)
        for i in range(n):  # once per run: which episode and step each buffer index is
            episode, t = buffer.buffer[i]
            key = id(episode)
            if key not in first_row:
                first_row[key] = rows
                rows += episode.size()
                episodes.append(episode)
            row[i] = first_row[key] + t
            step[i] = t
        self.episodes = episodes
        self.row, self.step = row, step
        self.zero_row = rows
        self.observations = _stack([e.observations for e in episodes], np.float32)
        self.next_observations = None
        if next_observations is not None:
            if len(next_observations) != rows:
                raise ValueError(f"{len(next_observations)} next observations for {rows} rows")
            self.next_observations = _stack([next_observations], np.float32)
        self.actions = _stack([e.actions for e in episodes], np.float32)
        reward_dtype = episodes[0].rewards.dtype
        self.rewards = _stack([e.rewards for e in episodes], reward_dtype)
        self.rewards32 = self.rewards.astype(np.float32)
        sizes = np.array([e.size() for e in episodes], dtype=np.int64)
        last_row = np.repeat(np.cumsum(sizes) - 1, sizes)  # per stacked row
        terminated = np.repeat([bool(e.terminated) for e in episodes], sizes)
        self.episode_of_row = np.repeat(np.arange(len(episodes)), sizes)
        self.row_start = np.repeat(np.cumsum(sizes) - sizes, sizes)
        is_terminal = terminated[row] & (row == last_row[row])
        self.terminal = is_terminal.astype(np.float32)
        self.next_row = np.where(is_terminal, self.zero_row, row + 1)
        self._suffix = np.zeros(rows, dtype=reward_dtype)
        self._suffix_done = np.zeros(rows, dtype=bool)

    def suffix_sums(self, start_row: np.ndarray) -> np.ndarray:
        """np.sum(episode.rewards[start:]) for each start row, computed once per row."""
        missing = np.unique(start_row[~self._suffix_done[start_row]])
        for r in missing.tolist():
            episode = self.episodes[self.episode_of_row[r]]
            self._suffix[r] = np.sum(episode.rewards[r - self.row_start[r] :])
            self._suffix_done[r] = True
        return self._suffix[start_row]


def _stack(arrays: list[np.ndarray], dtype: Any) -> np.ndarray:
    """Cast copies (casts are elementwise, as d3rlpy's per batch) stacked, plus a zero row."""
    cast = [np.asarray(a).astype(dtype) for a in arrays]
    zero = np.zeros((1, *cast[0].shape[1:]), dtype=dtype)
    return np.concatenate([*cast, zero], axis=0)


def _supported(buffer: ReplayBufferBase) -> bool:
    episodes = buffer.episodes
    if buffer.transition_count == 0 or not episodes:
        return False
    first = episodes[0]
    return all(
        isinstance(e.observations, np.ndarray)
        and e.observations.shape[1:] == first.observations.shape[1:]
        and e.actions.shape[1:] == first.actions.shape[1:]
        and e.rewards.shape[1:] == first.rewards.shape[1:]
        and e.rewards.dtype == first.rewards.dtype
        for e in episodes
    )


class _LazyTransitions(Sequence[Transition]):
    """The batch's `transitions`, built by d3rlpy's picker only when read.

    d3rlpy reads them only to compute returns-to-go (e.g. CalQL); building B Transition objects
    per batch is the cost the vectorized sampler exists to avoid.
    """

    def __init__(self, buffer: ReplayBufferBase, index: np.ndarray):
        self._buffer = buffer
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> Transition: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Transition]: ...

    def __getitem__(self, i: int | slice) -> Transition | Sequence[Transition]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        episode, t = self._buffer.buffer[int(self._index[i])]
        return self._buffer.transition_picker(episode, t)
