"""The vectorized sampler gives d3rlpy's minibatches bitwise, for the same numpy RNG state.

Each case seeds numpy's legacy global generator, draws with d3rlpy's ReplayBuffer and with
samrl's Sampler, and compares every array byte for byte (dtype, shape, signed zeros), the lazily
built transitions, and the generator state afterwards (the same number of draws was made).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from d3rlpy.dataset import (
    Episode,
    FIFOBuffer,
    MDPDataset,
    MultiStepTransitionPicker,
    ReplayBuffer,
)

from samrl.run.sampling import Sampler
from samrl.testing.data import random_dataset

SEEDS = range(6)


def _dataset(kind: str) -> Any:
    """Datasets covering timeouts, terminals, both at once in one dataset, uneven episodes."""
    if kind == "timeouts-continuous":
        return random_dataset(discrete=False, n_episodes=5, episode_length=9)
    if kind == "timeouts-discrete":
        return random_dataset(discrete=True, n_episodes=5, episode_length=9, action_size=4)
    rng = np.random.default_rng(7)
    lengths = [1, 2, 13, 5, 30, 3, 8]
    n = sum(lengths)
    ends = np.cumsum(lengths) - 1
    terminals = np.zeros(n, dtype=np.float32)
    timeouts = np.zeros(n, dtype=np.float32)
    for i, end in enumerate(ends):
        # mixed: odd episodes end terminal, even ones by timeout
        (terminals if i % 2 else timeouts)[end] = 1.0
    observations = rng.normal(size=(n, 2, 3)).astype(np.float32)  # image-like shape
    rewards = rng.choice([0.0, -0.0, 1.5, -2.25, 1e-8], size=(n, 1)).astype(np.float32)
    # episodes whose rewards are all -0.0 (signed zeros through sums and returns-to-go)
    rewards[: lengths[0] + lengths[1]] = -0.0
    rewards[ends[5] - lengths[5] + 1 : ends[5] + 1] = -0.0
    if kind == "mixed-discrete":
        actions = rng.integers(0, 3, size=(n,))
    else:
        actions = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    return MDPDataset(observations, actions, rewards, terminals, timeouts)


KINDS = ["timeouts-continuous", "timeouts-discrete", "mixed-continuous", "mixed-discrete"]


def _same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), where  # bitwise, signed zeros included
    else:
        assert a == b, where


def _same_batch(expected: Any, got: Any) -> None:
    for field in dataclasses.fields(expected):
        if field.name != "transitions":
            _same(getattr(expected, field.name), getattr(got, field.name), field.name)


def _state() -> tuple[Any, ...]:
    _, keys, pos, gauss, cached = np.random.get_state()
    return keys.tobytes(), pos, gauss, cached


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_transition_batches_are_d3rlpys_bitwise(kind: str, batch_size: int) -> None:
    dataset = _dataset(kind)
    sampler = Sampler(dataset)
    assert sampler.vectorized
    for seed in SEEDS:
        np.random.seed(seed)
        expected = [dataset.sample_transition_batch(batch_size) for _ in range(3)]
        state = _state()
        np.random.seed(seed)
        got = [sampler.transition_batch(batch_size) for _ in range(3)]
        assert _state() == state
        for e, g in zip(expected, got, strict=True):
            _same_batch(e, g)
            assert len(g.transitions) == len(e.transitions) == batch_size
            for te, tg in zip(e.transitions, g.transitions, strict=True):
                for f in dataclasses.fields(te):
                    _same(np.asarray(getattr(te, f.name)), np.asarray(getattr(tg, f.name)), f.name)


def test_terminal_and_timeout_steps_are_both_sampled() -> None:
    """The mixed dataset really exercises terminal (zero next observation) and timeout rows."""
    dataset = _dataset("mixed-continuous")
    np.random.seed(0)
    batch = Sampler(dataset).transition_batch(4096)
    terminal = batch.terminals[:, 0] == 1.0
    assert terminal.any() and (~terminal).any()
    assert np.all(batch.next_observations[terminal] == 0.0)
    assert np.all(batch.next_actions[terminal] == 0.0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("batch_size", "length"), [(1, 1), (5, 4), (32, 20)])
def test_trajectory_batches_are_d3rlpys_bitwise(kind: str, batch_size: int, length: int) -> None:
    dataset = _dataset(kind)
    sampler = Sampler(dataset)
    for seed in SEEDS:
        np.random.seed(seed)
        expected = [dataset.sample_trajectory_batch(batch_size, length) for _ in range(3)]
        state = _state()
        np.random.seed(seed)
        got = [sampler.trajectory_batch(batch_size, length) for _ in range(3)]
        assert _state() == state
        for e, g in zip(expected, got, strict=True):
            _same_batch(e, g)


def test_fifo_buffer_and_float64_episodes() -> None:
    """A buffer built from Episode objects with float64 arrays (cast per batch, as d3rlpy does)."""
    rng = np.random.default_rng(3)
    episodes = [
        Episode(
            observations=rng.normal(size=(size, 4)),
            actions=rng.normal(size=(size, 2)),
            rewards=rng.normal(size=(size, 1)),
            terminated=bool(size % 2),
        )
        for size in (6, 11, 3, 9)
    ]
    buffer = ReplayBuffer(FIFOBuffer(limit=1000), episodes=episodes)
    sampler = Sampler(buffer)
    assert sampler.vectorized
    for seed in SEEDS:
        np.random.seed(seed)
        expected_t = buffer.sample_transition_batch(16)
        expected_j = buffer.sample_trajectory_batch(8, 5)
        np.random.seed(seed)
        _same_batch(expected_t, sampler.transition_batch(16))
        _same_batch(expected_j, sampler.trajectory_batch(8, 5))


def test_other_pickers_fall_back_to_d3rlpy() -> None:
    base = random_dataset(discrete=False, n_episodes=3, episode_length=10)
    buffer = ReplayBuffer(
        FIFOBuffer(limit=1000),
        episodes=base.episodes,
        transition_picker=MultiStepTransitionPicker(n_steps=3, gamma=0.9),
    )
    sampler = Sampler(buffer)
    np.random.seed(1)
    expected = buffer.sample_transition_batch(8)
    np.random.seed(1)
    _same_batch(expected, sampler.transition_batch(8))


def test_a_grown_buffer_is_stacked_again() -> None:
    base = random_dataset(discrete=False, n_episodes=3, episode_length=10)
    buffer = ReplayBuffer(FIFOBuffer(limit=1000), episodes=list(base.episodes[:2]))
    sampler = Sampler(buffer)
    sampler.transition_batch(4)
    buffer.append_episode(base.episodes[2])
    np.random.seed(2)
    expected = buffer.sample_transition_batch(32)
    np.random.seed(2)
    _same_batch(expected, sampler.transition_batch(32))


@pytest.mark.parametrize("kind", KINDS)
def test_the_sampler_indexes_the_datasets_arrays_without_a_copy(kind: str) -> None:
    """MDPDataset's episodes are views of the arrays it was given: the sampler reads those."""
    dataset = _dataset(kind)
    a = Sampler(dataset)._current()
    assert a is not None
    for name in ("observations", "actions", "rewards"):
        first = getattr(dataset.episodes[0], name)
        assert np.shares_memory(getattr(a, name), first), name
        assert getattr(a, name).base is first.base, name  # the same memory, not a copy of it
    assert a.row.dtype == np.int32 and a.terminal.dtype == np.float32


def _next_rows(dataset: Any) -> np.ndarray:
    """The following row's observation for each row of the episodes (zeros after the last)."""
    return np.concatenate(
        [
            np.concatenate([e.observations[1:], np.zeros_like(e.observations[:1])])
            for e in dataset.episodes
        ]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_separate_next_observations_equal_to_the_next_rows_are_d3rlpys_bitwise(
    kind: str,
) -> None:
    dataset = _dataset(kind)
    sampler = Sampler(dataset, next_observations=_next_rows(dataset))
    for seed in SEEDS:
        np.random.seed(seed)
        expected = dataset.sample_transition_batch(64)
        np.random.seed(seed)
        _same_batch(expected, sampler.transition_batch(64))


def test_separate_next_observations_are_used_and_zero_on_terminal_steps() -> None:
    dataset = _dataset("mixed-continuous")
    corrupted = _next_rows(dataset) + np.float32(100.0)  # unlike any following observation
    sampler = Sampler(dataset, next_observations=corrupted)
    np.random.seed(3)
    expected = dataset.sample_transition_batch(256)
    np.random.seed(3)
    got = sampler.transition_batch(256)
    terminal = expected.terminals[:, 0] == 1.0
    assert terminal.any() and (~terminal).any()
    assert np.array_equal(
        got.next_observations[~terminal], expected.next_observations[~terminal] + 100
    )
    assert not got.next_observations[terminal].any()
    _same(expected.observations, got.observations, "observations")
    with pytest.raises(ValueError, match="rows"):
        Sampler(dataset, next_observations=corrupted[:-1])
