"""The one episode loop: the return of a policy over seeded episodes of a gymnasium env.

Used by evaluation (the trained policy, each epoch) and by the built-in data generators (the
scripted and trained behaviour policies' reference returns).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: A policy for one episode: (observation, the last reward) -> action. Made afresh for each
#: episode (after its reset), so a stateful one (a decision transformer's) starts clean.
Policy = Callable[[Any, float], Any]


def episode_returns(
    env: Any, new_policy: Callable[[], Policy], n_episodes: int, seed: int
) -> list[float]:
    """Undiscounted return of each of `n_episodes` episodes, episode i reset with seed + i."""
    returns = []
    for episode in range(n_episodes):
        observation, _ = env.reset(seed=seed + episode)
        policy = new_policy()
        total, reward, done = 0.0, 0.0, False
        while not done:
            action = policy(observation, reward)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns
