"""Pendulum and CartPole datasets from scripted behaviour policies (no learning involved).

Rollouts are plain gymnasium episodes (gym.make with its TimeLimit), so the data follow the
real environment dynamics; one episode after another is fast enough (100k steps in seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from samrl.data.rollout import episode_returns
from samrl.data.transitions import Transitions

# Bump when anything below changes the generated numbers; it is part of the cache file name.
GENERATOR_VERSION = 1

Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray | int]

# Pendulum-v1 physics: theta_ddot = 3g/(2l) sin(theta) + 3/(m l^2) u with g=10, m=l=1,
# theta = 0 upright. Energy E = theta_dot^2/2 + 15 cos(theta) is 15 at rest upright.
_PENDULUM_MAX_TORQUE = 2.0
_UPRIGHT_ENERGY = 15.0


def _pendulum_controller(kp: float, kd: float, pump: float) -> Callable[[np.ndarray], float]:
    def act(obs: np.ndarray) -> float:
        cos_t, sin_t, theta_dot = float(obs[0]), float(obs[1]), float(obs[2])
        theta = float(np.arctan2(sin_t, cos_t))
        if cos_t > 0.85:  # near the top: PD balance (the linearised LQR gains have this form)
            torque = -(kp * theta + kd * theta_dot)
        else:  # energy pumping: dE/dt = 3 u theta_dot, so push along theta_dot until E = 15
            energy = 0.5 * theta_dot**2 + _UPRIGHT_ENERGY * cos_t
            direction = np.sign(theta_dot) if abs(theta_dot) > 1e-3 else 1.0
            torque = pump * (_UPRIGHT_ENERGY - energy) * direction
        return float(np.clip(torque, -_PENDULUM_MAX_TORQUE, _PENDULUM_MAX_TORQUE))

    return act


_pendulum_expert_act = _pendulum_controller(kp=10.0, kd=2.0, pump=1.0)
_pendulum_weak_act = _pendulum_controller(kp=6.0, kd=0.6, pump=0.3)


def pendulum_policy(quality: float) -> Policy:
    """quality 1 = expert controller, 0 = uniform random torque; between: a degraded
    controller with Gaussian noise, and random torques with probability 1 - quality."""

    def act(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if quality >= 1.0:
            torque = _pendulum_expert_act(obs)
        elif rng.random() >= quality:
            torque = rng.uniform(-_PENDULUM_MAX_TORQUE, _PENDULUM_MAX_TORQUE)
        else:
            torque = _pendulum_weak_act(obs) + rng.normal(0.0, 0.5)
        return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)

    return act


def cartpole_policy(quality: float) -> Policy:
    """Expert: a linear state-feedback rule (push toward the side the pole falls to, damped
    by cart position/velocity); it balances for the full 500 steps. Below 1: random actions
    with probability 1 - quality."""

    gains = np.array([0.1, 0.5, 10.0, 2.0])

    def act(obs: np.ndarray, rng: np.random.Generator) -> int:
        if quality < 1.0 and rng.random() >= quality:
            return int(rng.integers(2))
        return int(float(gains @ obs) > 0.0)

    return act


@dataclass(frozen=True)
class ClassicTask:
    env_id: str
    discrete: bool
    make_policy: Callable[[float], Policy]
    medium_quality: float


CLASSIC_TASKS: dict[str, ClassicTask] = {
    "pendulum": ClassicTask("Pendulum-v1", False, pendulum_policy, medium_quality=0.5),
    "cartpole": ClassicTask("CartPole-v1", True, cartpole_policy, medium_quality=0.5),
}
CLASSIC_LEVELS = ("random", "medium", "expert", "replay")
REFERENCE_EPISODES = 50  # rollouts behind the recorded random/expert reference returns
REFERENCE_SEED = 12345  # fixed so references do not depend on a dataset's size or seed


def _quality_schedule(level: str, task: ClassicTask) -> Callable[[int, int], float]:
    """Quality of episode i out of an expected n episodes."""
    if level == "random":
        return lambda i, n: 0.0
    if level == "expert":
        return lambda i, n: 1.0
    if level == "medium":
        return lambda i, n: task.medium_quality
    # replay: quality rising over the episodes like a learning agent's replay buffer
    return lambda i, n: min(1.0, i / max(1, n - 1))


def rollout(
    task: ClassicTask,
    quality_of_episode: Callable[[int, int], float],
    size: int,
    seed: int,
    *,
    on_steps: Callable[[int], None] | None = None,
) -> tuple[Transitions, np.ndarray]:
    """Run episodes until `size` steps are collected; the last episode is cut (timeout)."""
    env = gym.make(task.env_id, disable_env_checker=True)
    rng = np.random.default_rng(seed)
    horizon = int(env.spec.max_episode_steps or 1000)  # type: ignore[union-attr]
    expected_episodes = max(1, size // horizon)
    obs_dim = int(env.observation_space.shape[0])  # type: ignore[index]
    observations = np.empty((size, obs_dim), np.float32)
    next_observations = np.empty((size, obs_dim), np.float32)
    actions = np.empty(size, np.int64) if task.discrete else np.empty((size, 1), np.float32)
    rewards = np.empty(size, np.float32)
    terminals = np.zeros(size, bool)
    timeouts = np.zeros(size, bool)
    returns: list[float] = []
    step = 0
    episode = 0
    obs, _ = env.reset(seed=seed)
    while step < size:
        policy = task.make_policy(quality_of_episode(episode, expected_episodes))
        episode_return = 0.0
        start = step
        while step < size:
            action = policy(obs, rng)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            observations[step] = obs
            actions[step] = action
            rewards[step] = reward
            next_observations[step] = next_obs
            terminals[step] = terminated
            timeouts[step] = truncated and not terminated
            episode_return += float(reward)
            step += 1
            obs = next_obs
            if terminated or truncated:
                returns.append(episode_return)
                obs, _ = env.reset()
                break
        else:
            if not terminals[step - 1]:
                timeouts[step - 1] = True  # data end cuts this episode
        episode += 1
        if on_steps is not None:
            on_steps(step - start)
    env.close()
    data = Transitions(observations, actions, rewards, terminals, timeouts, next_observations)
    return data, np.asarray(returns, dtype=np.float64)


def reference_returns(task: ClassicTask) -> tuple[float, float]:
    """Mean return of the random and the expert policy over fixed-seed complete episodes."""
    means = []
    for quality in (0.0, 1.0):
        env = gym.make(task.env_id, disable_env_checker=True)
        rng = np.random.default_rng(REFERENCE_SEED)
        policy = task.make_policy(quality)

        def scripted(obs: Any, reward: float, policy: Any = policy, rng: Any = rng) -> Any:
            return policy(obs, rng)

        totals = episode_returns(env, lambda: scripted, REFERENCE_EPISODES, REFERENCE_SEED)
        means.append(float(np.mean(totals)))
    return means[0], means[1]


def generate_classic(
    name: str, level: str, size: int, seed: int, *, on_steps: Callable[[int], None] | None = None
) -> tuple[Transitions, dict[str, object]]:
    task = CLASSIC_TASKS[name]
    data, returns = rollout(task, _quality_schedule(level, task), size, seed, on_steps=on_steps)
    metadata: dict[str, object] = {
        "behaviour_policy": f"scripted {name} controller, level {level}",
        "behaviour_returns": returns.tolist(),
        "behaviour_return_mean": float(np.mean(returns)) if len(returns) else None,
    }
    return data, metadata
