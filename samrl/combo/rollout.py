"""Model rollouts and the FIFO buffer of model-generated transitions.

Everything here lives in the impl's tensor space (after d3rlpy's scalers), where the policy and
the dynamics model work, so model transitions never go through numpy or an inverse scaler.
d3rlpy's ReplayBuffer stores whole episodes of raw (unscaled) numpy data; rollouts produce
episode-less scaled transitions in bulk, so a plain tensor FIFO is the simpler fit.
"""

from __future__ import annotations

import dataclasses

import torch
from d3rlpy.models.torch import NormalPolicy, build_squashed_gaussian_distribution

from samrl.combo.dynamics import ProbabilisticEnsemble


@dataclasses.dataclass
class Transitions:
    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    def select(self, index: torch.Tensor) -> Transitions:
        return Transitions(*(t[index] for t in dataclasses.astuple(self)))

    def to(self, device: str | torch.device) -> Transitions:
        return Transitions(*(t.to(device) for t in dataclasses.astuple(self)))

    @staticmethod
    def cat(parts: list[Transitions]) -> Transitions:
        return Transitions(
            *(torch.cat(ts) for ts in zip(*(dataclasses.astuple(p) for p in parts), strict=True))
        )


class ModelBuffer:
    """First in, first out: holds the newest `capacity` model transitions."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.data: Transitions | None = None

    def __len__(self) -> int:
        return 0 if self.data is None else len(self.data)

    def add(self, transitions: Transitions) -> None:
        data = transitions if self.data is None else Transitions.cat([self.data, transitions])
        if len(data) > self.capacity:
            data = data.select(torch.arange(len(data) - self.capacity, len(data)))
        self.data = data

    def sample(self, n: int) -> Transitions:
        assert self.data is not None and len(self.data) > 0, "the model buffer is empty"
        index = torch.randint(len(self.data), (n,), device=self.data.observations.device)
        return self.data.select(index)


@torch.no_grad()
def rollout(
    policy: NormalPolicy,
    dynamics: ProbabilisticEnsemble,
    start_observations: torch.Tensor,
    horizon: int,
) -> Transitions:
    """`horizon` steps from each start state with sampled policy actions; all non-terminal
    (COMBO/MOPO without a termination function). Returned step by step: rows
    [h * n, (h + 1) * n) are step h."""
    steps = []
    observations = start_observations
    for _ in range(horizon):
        actions = build_squashed_gaussian_distribution(policy(observations)).sample()
        next_observations, rewards = dynamics.sample(observations, actions)
        steps.append(Transitions(observations, actions, rewards, next_observations))
        observations = next_observations
    return Transitions.cat(steps)
