"""Tiny datasets and networks for tests and benchmarks (seconds, not minutes)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from d3rlpy.dataset import MDPDataset
from d3rlpy.models.encoders import VectorEncoderFactory

from samrl.algos import AlgoFacts


def random_dataset(
    *,
    discrete: bool,
    n_episodes: int = 8,
    episode_length: int = 25,
    observation_size: int = 3,
    action_size: int = 2,
    seed: int = 0,
) -> MDPDataset:
    """Random transitions in episodes of fixed length; the last step of each is a timeout."""
    rng = np.random.default_rng(seed)
    n = n_episodes * episode_length
    observations = rng.normal(size=(n, observation_size)).astype(np.float32)
    if discrete:
        actions = rng.integers(0, action_size, size=(n,))
    else:
        actions = rng.uniform(-1.0, 1.0, size=(n, action_size)).astype(np.float32)
    rewards = rng.normal(size=(n, 1)).astype(np.float32)
    terminals = np.zeros(n, dtype=np.float32)
    timeouts = np.zeros(n, dtype=np.float32)
    timeouts[episode_length - 1 :: episode_length] = 1.0
    return MDPDataset(observations, actions, rewards, terminals, timeouts)


def tiny_params(facts: AlgoFacts, hidden: int = 8, batch_size: int = 16) -> dict[str, Any]:
    """Config keyword arguments that make any algorithm tiny and fast."""
    params: dict[str, Any] = {}
    for field in dataclasses.fields(facts.config_class):
        if field.name.endswith("encoder_factory"):
            params[field.name] = VectorEncoderFactory(hidden_units=[hidden])
    params["batch_size"] = batch_size
    names = {f.name for f in dataclasses.fields(facts.config_class)}
    if facts.transformer:
        params.update(context_size=4, num_heads=1, num_layers=1, max_timestep=100)
    if "warmup_steps" in names and not facts.transformer:
        params["warmup_steps"] = 2  # exercise BEAR's warm-up actor and its switch to the full loss
    if "n_action_samples" in names:
        params["n_action_samples"] = 4
    return params
