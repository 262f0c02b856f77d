"""Minibatches drawn with array indexing, bitwise identical to d3rlpy's ReplayBuffer sampling.

d3rlpy 2.8.1's `sample_transition_batch(B)` draws B indices with B scalar calls of
`np.random.randint(transition_count)` and builds each transition in Python; the legacy global
generator gives the same B integers (and ends in the same state) for one call
`np.random.randint(transition_count, size=B)` (tests/test_sampling.py checks it, and that every
array of every batch matches bitwise). Here the B indices are drawn in that one call and the
batch is gathered by indexing the episodes' storage directly:

- transitions (BasicTransitionPicker): observation/action/reward at the index, next
  observation/action at index + 1, or zeros on an episode's terminal step (terminal = 1 there;
  a timeout is not terminal and has the next observation), interval 1;
- trajectories (BasicTrajectorySlicer): the `length` steps ending at the index, zero-padded at the
  front, with returns-to-go, timesteps and masks computed as the slicer does.

Other pickers/slicers, tuple observations, or rewards of mixed dtypes fall back to d3rlpy's own
sampling (`Sampler.vectorized` says which one is used). The arrays stay in CPU numpy memory;
d3rlpy converts each batch to tensors on the algorithm's device, as it does for its own batches.

No second copy of the data: d3rlpy's MDPDataset slices the arrays it is given into episodes
(views), so the episodes' rows lie in one array per field, and the sampler indexes that array
(`_rows_of`). Only episodes that do not share one array (built one by one) are stacked into a
copy. Per transition the sampler keeps its row (int32 where it fits) and its terminal flag;
what trajectories need besides is built on their first batch.

`next_observations` (optional): next observations of their own, one row per row of the
buffer's episodes in order (`np.concatenate([e.observations for e in buffer.episodes])`; for
samrl's training split, the rows of the arrays its MDPDataset was built from), e.g. corrupted
next observations that differ from the following row's observation (RIQL keeps them apart).
A transition batch then takes its next observations from there (zeros on terminal steps, as
d3rlpy's picker gives); trajectory batches do not use them. Without it, batches are d3rlpy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from d3rlpy.dataset import (
    BasicTrajectorySlicer,
    BasicTransitionPicker,
    InfiniteBuffer,
    ReplayBufferBase,
    TrajectoryMiniBatch,
    Transition,
    TransitionMiniBatch,
)


class Sampler:
    """Transition and trajectory minibatches of one replay buffer (which must not grow, or is
    indexed again when it did).

    `next_observations`: see the module docstring; its rows must match the episodes' rows.
    """

    def __init__(self, buffer: ReplayBufferBase, next_observations: np.ndarray | None = None):
        self.buffer = buffer
        self._next_source = next_observations
        self._arrays: _Arrays | None = None
        self.vectorized = _supported(buffer)
        if self.vectorized:
            self._arrays = _Arrays(buffer, next_observations)
        elif next_observations is not None:
            raise ValueError(
                "next_observations need the vectorized sampler (d3rlpy's basic picker and "
                "array observations of one shape)"
            )

    def transition_batch(self, batch_size: int) -> TransitionMiniBatch:
        a = self._current()
        if a is None or type(self.buffer.transition_picker) is not BasicTransitionPicker:
            if self._next_source is not None:
                raise ValueError("next_observations need d3rlpy's BasicTransitionPicker")
            return self.buffer.sample_transition_batch(batch_size)
        index = np.random.randint(a.n, size=batch_size)
        row = a.row[index]
        terminal = a.terminal[index]
        is_terminal = terminal.astype(bool)
        # the next step's row (within its episode unless terminal; clipped so that a terminal
        # last row indexes something, then zeroed as d3rlpy's picker zeroes it)
        next_row = np.minimum(row + 1, a.last_row)
        if a.next_observations is not None:
            next_observations = _float32(a.next_observations[a.episode_row(index)])
        else:
            next_observations = _float32(a.observations[next_row])
        next_observations[is_terminal] = 0
        next_actions = _float32(a.actions[next_row])
        next_actions[is_terminal] = 0
        return TransitionMiniBatch(
            observations=_float32(a.observations[row]),
            actions=_float32(a.actions[row]),
            rewards=_float32(a.rewards[row]),
            next_observations=next_observations,
            next_actions=next_actions,
            terminals=terminal[:, None],
            intervals=np.ones((batch_size, 1), dtype=np.float32),
            transitions=_LazyTransitions(self.buffer, index),
        )

    def trajectory_batch(self, batch_size: int, length: int) -> TrajectoryMiniBatch:
        a = self._current()
        if a is None or type(self.buffer.trajectory_slicer) is not BasicTrajectorySlicer:
            return self.buffer.sample_trajectory_batch(batch_size, length)
        index = np.random.randint(a.n, size=batch_size)
        t = a.trajectories()
        end = t.step[index]  # time step of the last element within its episode
        time = end[:, None] + np.arange(1 - length, 1)  # (B, L), negative where padded
        valid = time >= 0
        row = a.row[index].astype(np.int64)[:, None] - end[:, None] + np.maximum(time, 0)
        rewards = _zero_where_not(valid, a.rewards[row])  # episode dtype, zeros where padded
        terminals = np.zeros((batch_size, length, 1), dtype=np.float32)
        terminals[:, -1, 0] = a.terminal[index]
        return TrajectoryMiniBatch(
            observations=_zero_where_not(valid, _float32(a.observations[row])),
            actions=_zero_where_not(valid, _float32(a.actions[row])),
            rewards=rewards.astype(np.float32),
            returns_to_go=self._returns_to_go(a, t, index, end, rewards, valid, length),
            terminals=terminals,
            timesteps=np.where(valid, time + 1, 0).astype(np.float32),
            masks=valid.astype(np.float32),
            length=length,
        )

    def _current(self) -> _Arrays | None:
        a = self._arrays
        if a is not None and a.n != self.buffer.transition_count:
            # the buffer grew: index it again
            self._arrays = a = _Arrays(self.buffer, self._next_source)
        return a

    @staticmethod
    def _returns_to_go(
        a: _Arrays,
        t: _TrajectoryIndex,
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
        start_row = a.row[index].astype(np.int64) - np.minimum(end, length - 1)
        ret = t.suffix_sums(a.rewards, start_row, t.end_row[index])
        padded = np.where(valid[..., None], rewards, rewards.dtype.type(-0.0))
        rtg = ret[:, None, None] - np.cumsum(padded, axis=1) + rewards
        return np.where(valid[..., None], rtg, 0).astype(np.float32)


class _Arrays:
    """Where each transition of the buffer lies: its row in the episodes' common arrays (the
    arrays MDPDataset sliced, or one stacked copy), and whether it is terminal."""

    def __init__(self, buffer: ReplayBufferBase, next_observations: np.ndarray | None):
        episodes = list(buffer.episodes)
        n = buffer.transition_count
        self.n = n
        self.sizes = np.array([e.size() for e in episodes], dtype=np.int64)
        starts = {}
        fields = {}
        for name in ("observations", "actions", "rewards"):
            fields[name], starts[name] = _rows_of([getattr(e, name) for e in episodes])
        if not (
            np.array_equal(starts["observations"], starts["actions"])
            and np.array_equal(starts["observations"], starts["rewards"])
        ):  # the fields lie at different rows: stack all three alike
            for name in fields:
                fields[name], starts[name] = _stacked([getattr(e, name) for e in episodes])
        self.observations = fields["observations"]
        self.actions = fields["actions"]
        self.rewards = fields["rewards"]
        self.last_row = len(self.observations) - 1
        self.episode_start = starts["observations"]  # first row of each episode
        first, t, episode = _transition_positions(buffer, episodes, n)
        self.first_index = first  # the first buffer index of each episode
        row = self.episode_start[episode] + t
        self.row = row.astype(np.int32) if len(self.observations) < 2**31 else row
        terminated = np.array([bool(e.terminated) for e in episodes], dtype=bool)
        self.terminal = (terminated[episode] & (t == self.sizes[episode] - 1)).astype(np.float32)
        # kept for the first trajectory batch (decision transformers only): built then
        self._episode, self._t = episode, t
        self._trajectories: _TrajectoryIndex | None = None
        self.next_observations = None
        if next_observations is not None:
            rows = int(self.sizes.sum())
            if len(next_observations) != rows:
                raise ValueError(
                    f"next_observations has {len(next_observations)} rows; the buffer's "
                    f"episodes have {rows}"
                )
            self.next_observations = next_observations
            self._concatenated_start = np.cumsum(self.sizes) - self.sizes

    def episode_row(self, index: np.ndarray) -> np.ndarray:
        """Rows of transitions `index` in the episodes concatenated in order."""
        row = self.row[index].astype(np.int64)
        episode = np.searchsorted(self.first_index, index, side="right") - 1
        return row - self.episode_start[episode] + self._concatenated_start[episode]

    def trajectories(self) -> _TrajectoryIndex:
        if self._trajectories is None:
            self._trajectories = _TrajectoryIndex(self, self._episode, self._t)
        return self._trajectories


class _TrajectoryIndex:
    """Per transition its step in its episode and the row after its episode's last; per row a
    cache of the episode's reward sum from there on."""

    def __init__(self, a: _Arrays, episode: np.ndarray, t: np.ndarray):
        self.step = t
        self.end_row = a.episode_start[episode] + a.sizes[episode]
        self._suffix = np.zeros(len(a.rewards), dtype=a.rewards.dtype)
        self._suffix_done = np.zeros(len(a.rewards), dtype=bool)

    def suffix_sums(
        self, rewards: np.ndarray, start_row: np.ndarray, end_row: np.ndarray
    ) -> np.ndarray:
        """np.sum(episode.rewards[start:]) for each start row, computed once per row."""
        missing = ~self._suffix_done[start_row]
        for r, e in set(zip(start_row[missing].tolist(), end_row[missing].tolist(), strict=True)):
            self._suffix[r] = np.sum(rewards[r:e])
            self._suffix_done[r] = True
        return self._suffix[start_row]


def _transition_positions(
    buffer: ReplayBufferBase, episodes: list[Any], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first buffer index of each episode, step t and episode number of each buffer index).

    d3rlpy's InfiniteBuffer appends an episode's transitions 0..transition_count-1 one after
    the other, episode by episode (buffer.episodes in that order): computed at once, and
    checked at each episode's first and last index. Other buffers (a FIFO one drops old
    transitions) are asked index by index.
    """
    counts = np.array([e.transition_count for e in episodes], dtype=np.int64)
    first = np.cumsum(counts) - counts
    if type(buffer.buffer) is InfiniteBuffer and int(counts.sum()) == n:
        fits = all(
            buffer.buffer[int(i)] == (e, 0) and buffer.buffer[int(i + c - 1)] == (e, int(c - 1))
            for e, i, c in zip(episodes, first, counts, strict=True)
        )
        if fits:
            episode = np.repeat(np.arange(len(episodes)), counts)
            return first, np.arange(n, dtype=np.int64) - first[episode], episode
    number = {id(e): k for k, e in enumerate(episodes)}
    t = np.empty(n, dtype=np.int64)
    episode = np.empty(n, dtype=np.int64)
    for i in range(n):
        e, step = buffer.buffer[i]
        episode[i], t[i] = number[id(e)], step
    first = np.searchsorted(episode, np.arange(len(episodes)))
    return first, t, episode


def _rows_of(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(one array, the row where each of `arrays` starts in it): the array all of them are
    views of when they are (no copy), else a stacked copy."""
    first = arrays[0]
    owner = first.base
    row_shape, dtype = first.shape[1:], first.dtype
    if (
        isinstance(owner, np.ndarray)
        and owner.flags.c_contiguous
        and all(a.base is owner and a.flags.c_contiguous and a.dtype == dtype for a in arrays)
        and all(a.shape[1:] == row_shape for a in arrays)
        and owner.dtype == dtype
    ):
        row_bytes = first.itemsize * int(np.prod(row_shape, dtype=np.int64))
        if row_bytes and owner.nbytes % row_bytes == 0:
            whole = owner.reshape(-1, *row_shape)  # a view: owner is contiguous
            base = whole.__array_interface__["data"][0]
            offsets = np.array([a.__array_interface__["data"][0] - base for a in arrays])
            if np.all(offsets % row_bytes == 0):
                return whole, offsets // row_bytes
    return _stacked(arrays)


def _stacked(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array([len(a) for a in arrays], dtype=np.int64)
    return np.concatenate([np.asarray(a) for a in arrays]), np.cumsum(sizes) - sizes


def _float32(array: np.ndarray) -> np.ndarray:
    """A gathered batch as float32 (casts are elementwise, as d3rlpy's per batch)."""
    return array.astype(np.float32, copy=False)


def _zero_where_not(valid: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """`batch` (B, L, ...) with +0.0 where the window is padding, as d3rlpy pads."""
    mask = valid.reshape(valid.shape + (1,) * (batch.ndim - 2))
    return np.where(mask, batch, batch.dtype.type(0))


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
