"""Probabilistic ensemble dynamics model (Chua et al. 2018; MBPO/MOPO/COMBO's model).

Each member maps (s, a) to a diagonal Gaussian over y = (s' - s, r): predicting the residual
keeps the targets small and centred. Inputs and targets are standardized with training-set
statistics kept as buffers (saved with the model), so one learning rate and one pair of log-std
bounds suit every dimension, rewards included; the NLL is that of the standardized targets. The
log-std is kept between learnable soft bounds (softplus), and the loss pulls the bounds
together so they cannot drift apart to make the NLL meaningless.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from d3rlpy.models.encoders import EncoderFactory
from d3rlpy.models.torch.encoders import EncoderWithAction, compute_output_size
from d3rlpy.torch_utility import TorchMiniBatch
from torch import nn

# Initial soft bounds on the log-std of each output dimension (MBPO's log-variance bounds 0.5
# and -10, halved for a log-std) and the weight of the term that keeps them tight.
MAX_LOGSTD_INIT = 0.25
MIN_LOGSTD_INIT = -5.0
LOGSTD_BOUND_WEIGHT = 0.01
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class DynamicsBatch:
    """A minibatch for the dynamics model; `weights[m, i]` is transition i's bootstrap count
    in member m's resampled training set (all ones for an unweighted batch)."""

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor
    weights: torch.Tensor

    @staticmethod
    def from_minibatch(batch: TorchMiniBatch, n_members: int) -> DynamicsBatch:
        """A d3rlpy minibatch (e.g. from samrl's curvature analysis) as a dynamics batch;
        terminal rows get weight 0, since d3rlpy stores a zero next state for them."""
        assert isinstance(batch.observations, torch.Tensor)
        assert isinstance(batch.next_observations, torch.Tensor)
        weights = (1.0 - batch.terminals.reshape(1, -1)).expand(n_members, -1)
        return DynamicsBatch(
            batch.observations, batch.actions, batch.rewards, batch.next_observations, weights
        )


@dataclasses.dataclass(frozen=True)
class DynamicsLoss:
    """The first field is what was backpropagated (the SAM engine reads it)."""

    dynamics_loss: torch.Tensor
    dynamics_nll: torch.Tensor
    dynamics_logstd_bound: torch.Tensor


class GaussianMember(nn.Module):  # type: ignore[misc]
    def __init__(self, encoder: EncoderWithAction, feature_size: int, output_size: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(feature_size, 2 * output_size)
        self.max_logstd = nn.Parameter(torch.full((1, output_size), MAX_LOGSTD_INIT))
        self.min_logstd = nn.Parameter(torch.full((1, output_size), MIN_LOGSTD_INIT))

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw_logstd = self.head(self.encoder(x, action)).chunk(2, dim=-1)
        # Soft clamp: smooth, so gradients still flow near the bounds.
        logstd = self.max_logstd - F.softplus(self.max_logstd - raw_logstd)
        logstd = self.min_logstd + F.softplus(logstd - self.min_logstd)
        return mean, logstd


class ProbabilisticEnsemble(nn.Module):  # type: ignore[misc]
    """Ensemble of Gaussian members over (s' - s, r)."""

    def __init__(
        self,
        observation_size: int,
        action_size: int,
        encoder_factory: EncoderFactory,
        n_members: int,
    ):
        super().__init__()
        self.observation_size = observation_size
        output_size = observation_size + 1
        members = []
        for _ in range(n_members):
            encoder = encoder_factory.create_with_action((observation_size,), action_size)
            feature_size = compute_output_size([(observation_size,), (action_size,)], encoder)
            members.append(GaussianMember(encoder, feature_size, output_size))
        self.members = nn.ModuleList(members)
        self.register_buffer("observation_mean", torch.zeros(observation_size))
        self.register_buffer("observation_std", torch.ones(observation_size))
        self.register_buffer("action_mean", torch.zeros(action_size))
        self.register_buffer("action_std", torch.ones(action_size))
        self.register_buffer("target_mean", torch.zeros(output_size))
        self.register_buffer("target_std", torch.ones(output_size))
        # Saved with the model: a loaded or resumed COMBO does not train its dynamics again.
        self.register_buffer("trained", torch.zeros((), dtype=torch.bool))

    @property
    def n_members(self) -> int:
        return len(self.members)

    def fit_normalizer(self, batch: DynamicsBatch) -> None:
        with torch.no_grad():
            for name, values in (
                ("observation", batch.observations),
                ("action", batch.actions),
                ("target", self.targets(batch)),
            ):
                getattr(self, f"{name}_mean").copy_(values.mean(0))
                getattr(self, f"{name}_std").copy_(values.std(0).clamp_min(1e-6))

    def forward(
        self, observations: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the standardized y = (s' - s, r), each (members, batch,
        observation_size + 1)."""
        x = (observations - self.observation_mean) / self.observation_std
        a = (actions - self.action_mean) / self.action_std
        outputs = [member(x, a) for member in self.members]
        return torch.stack([m for m, _ in outputs]), torch.stack([s for _, s in outputs])

    def targets(self, batch: DynamicsBatch) -> torch.Tensor:
        return torch.cat([batch.next_observations - batch.observations, batch.rewards], dim=-1)

    def standardized_targets(self, batch: DynamicsBatch) -> torch.Tensor:
        return (self.targets(batch) - self.target_mean) / self.target_std

    def nll(self, batch: DynamicsBatch) -> torch.Tensor:
        """Gaussian NLL of the standardized targets per member and transition: (members, batch)."""
        mean, logstd = self(batch.observations, batch.actions)
        z = (self.standardized_targets(batch) - mean) * torch.exp(-logstd)
        return (0.5 * z.square() + logstd + _HALF_LOG_2PI).sum(-1)

    def compute_loss(self, batch: DynamicsBatch | TorchMiniBatch) -> DynamicsLoss:
        if not isinstance(batch, DynamicsBatch):
            batch = DynamicsBatch.from_minibatch(batch, self.n_members)
        nll = self.nll(batch)
        weights = batch.weights
        # Each member's bootstrap-weighted mean; members are summed so each one's gradient does
        # not shrink with the ensemble size.
        per_member = (nll * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        bound = sum(
            (m.max_logstd.sum() - m.min_logstd.sum() for m in self.members),
            torch.zeros((), device=nll.device),
        )
        loss = per_member.sum() + LOGSTD_BOUND_WEIGHT * bound
        return DynamicsLoss(
            dynamics_loss=loss,
            dynamics_nll=per_member.detach().mean(),
            dynamics_logstd_bound=bound.detach(),
        )

    @torch.no_grad()
    def evaluate(self, batch: DynamicsBatch) -> tuple[float, float]:
        """(NLL, MSE of the mean prediction in the data's units), averaged over members,
        transitions and (for the MSE) dimensions."""
        mean, _ = self(batch.observations, batch.actions)
        mse = (mean * self.target_std + self.target_mean - self.targets(batch)).square().mean()
        return float(self.nll(batch).mean()), float(mse)

    @torch.no_grad()
    def predict_mean(
        self, observations: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ensemble's mean prediction of (s', r)."""
        mean, _ = self(observations, actions)
        y = mean.mean(0) * self.target_std + self.target_mean
        return observations + y[:, : self.observation_size], y[:, self.observation_size :]

    @torch.no_grad()
    def sample(
        self, observations: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One draw of (s', r) per row, each row from a uniformly chosen member."""
        mean, logstd = self(observations, actions)
        rows = torch.arange(observations.shape[0], device=observations.device)
        member = torch.randint(self.n_members, (observations.shape[0],), device=rows.device)
        mean, std = mean[member, rows], logstd[member, rows].exp()
        y = (mean + std * torch.randn_like(mean)) * self.target_std + self.target_mean
        return observations + y[:, : self.observation_size], y[:, self.observation_size :]
