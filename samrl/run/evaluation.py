"""Per-epoch evaluation: environment returns and held-out TD metrics.

Evaluation runs with the training RNG forked, so turning it on or off never changes training.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from d3rlpy.algos import GreedyTransformerActionSampler, IdentityTransformerActionSampler
from d3rlpy.metrics import (
    AverageValueEstimationEvaluator,
    ContinuousActionDiffEvaluator,
    DiscreteActionMatchEvaluator,
    TDErrorEvaluator,
)

from samrl.data.rollout import Policy, episode_returns
from samrl.rng import forked as forked_rng


def rollout_returns(
    algo: Any,
    env: Any,
    n_episodes: int,
    seed: int,
    *,
    transformer: bool,
    discrete: bool,
    target_return: float | None,
) -> list[float]:
    """Undiscounted returns of the greedy policy over `n_episodes` seeded episodes."""

    def new_policy() -> Policy:
        if not transformer:
            return lambda observation, reward: algo.predict(np.expand_dims(observation, 0))[0]
        sampler = (
            GreedyTransformerActionSampler() if discrete else IdentityTransformerActionSampler()
        )
        return algo.as_stateful_wrapper(target_return or 0.0, sampler).predict

    with forked_rng():
        return episode_returns(env, new_policy, n_episodes, seed)


def held_out_metrics(
    algo: Any, episodes: list[Any], dataset: Any, *, discrete: bool
) -> dict[str, float]:
    """TD error, average value estimate and action difference on held-out episodes."""
    action_metric = (
        DiscreteActionMatchEvaluator(episodes)
        if discrete
        else ContinuousActionDiffEvaluator(episodes)
    )
    evaluators = {
        "td_error": TDErrorEvaluator(episodes),
        "value_estimate": AverageValueEstimationEvaluator(episodes),
        "action_match" if discrete else "action_diff": action_metric,
    }
    out = {}
    with forked_rng():
        for name, evaluator in evaluators.items():
            try:
                out[name] = float(evaluator(algo, dataset))
            except NotImplementedError:
                out[name] = math.nan  # e.g. BC has no value function
    return out
