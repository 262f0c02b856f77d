"""RIQL on d3rlpy's IQL: its config (RIQLConfig; samrl.register() lets load_learnable find it),
the algorithm (RIQL, d3rlpy's IQL with RIQL's impl) and the impl (RIQLImpl, IQLImpl with
RIQL's losses).

What RIQL (RIQL.py of github.com/YangRui2015/RIQL) changes in IQL, and samrl with it:

- observation normalisation: mean and std over the observations and next observations of the
  training data after corruption, std + 1e-3 (d3rlpy's StandardObservationScaler with those
  statistics, set before the algorithm is built: `samrl_prepare`);
- K critics (`n_critics`, RIQL's default 5) and their targets;
- V by expectile regression (`expectile`, 0.7) toward the `quantile`-quantile across the K
  target critics of Q(s, a) (IQL: their minimum; quantile 0 is the minimum);
- the Q loss: RIQL's Huber loss `huber_loss(u, sigma)`, quadratic 0.5 u^2 / b for |u| < b and
  |u| - b / 2 beyond, with b = 1 / sigma^2 (`huber_sigma`; `q_loss: squared` is d3rlpy's
  squared error), toward targets r + gamma (1 - d) V(s') clipped to [target_min, target_max]
  ([-100, 1000]);
- the actor weighted by exp(weight_temp * (Q_quantile - V)) capped at max_weight (100).

Where samrl keeps d3rlpy's IQL rather than RIQL.py: each critic's loss is averaged over the
batch and the K averages are summed (d3rlpy's ensemble error; RIQL averages over critics too,
a factor K that Adam's normalisation removes up to its eps); the actor is d3rlpy IQL's Gaussian
policy trained by weighted log-likelihood (RIQL.py defaults to a deterministic actor with a
squared error); the actor's advantage uses V after this update's critic step (RIQL: before), as
d3rlpy's IQL does; no cosine schedule on the actor unless optim.lr_scheduler sets one.
With n_critics 2, quantile 0, q_loss squared, target clipping within range (or off) and no
normalisation, the update is d3rlpy IQL's bitwise (tests/test_riql.py).
"""

# No `from __future__ import annotations`: d3rlpy's (de)serializer reads the config's field types.

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from d3rlpy.algos import IQL, IQLConfig
from d3rlpy.algos.qlearning.torch.iql_impl import IQLCriticLoss, IQLImpl
from d3rlpy.base import DeviceArg
from d3rlpy.dataset import ReplayBufferBase
from d3rlpy.preprocessing import StandardObservationScaler
from d3rlpy.torch_utility import TorchMiniBatch
from d3rlpy.types import Shape

from samrl.run.hooks import TrainingHooks
from samrl.validate import require

Q_LOSSES = ("huber", "squared")
#: RIQL's eps added to the observations' std (compute_mean_std(..., eps=1e-3)).
NORMALIZATION_EPS = 1e-3


@dataclasses.dataclass()
class RIQLConfig(IQLConfig):
    r"""Config of RIQL (Yang et al. 2024, Towards Robust Offline Reinforcement Learning under
    Diverse Data Corruption): d3rlpy's IQLConfig plus

    Args:
        quantile: alpha, the quantile across target critics V regresses toward (0: min).
        q_loss: huber (RIQL) or squared (d3rlpy's IQL).
        huber_sigma: RIQL's sigma; the Huber loss is quadratic for |u| < 1 / sigma**2.
        clip_targets: clip Q targets to [target_min, target_max].
        target_min, target_max: RIQL's -100 and 1000.
        normalize_observations: standardise observations with statistics of the training
            observations and next observations (RIQL's normalize), eps 1e-3; set by samrl's
            trainer before the build (`samrl_prepare`); an observation_scaler given is kept.
    """

    n_critics: int = 5
    quantile: float = 0.25
    q_loss: str = "huber"
    huber_sigma: float = 1.0
    clip_targets: bool = True
    target_min: float = -100.0
    target_max: float = 1000.0
    normalize_observations: bool = True

    def __post_init__(self) -> None:
        require(0.0 <= self.quantile <= 1.0, "quantile", "must be in [0, 1]", self.quantile)
        require(self.q_loss in Q_LOSSES, "q_loss", "must be huber or squared", self.q_loss)
        require(self.huber_sigma > 0.0, "huber_sigma", "must be > 0", self.huber_sigma)
        require(self.n_critics >= 1, "n_critics", "must be >= 1", self.n_critics)
        require(
            self.target_min < self.target_max,
            "target_min",
            f"must be < target_max ({self.target_max})",
            self.target_min,
        )

    def create(self, device: DeviceArg = False, enable_ddp: bool = False) -> "RIQL":
        return RIQL(self, device, enable_ddp)

    @staticmethod
    def get_type() -> str:
        return "riql"


def observation_statistics(
    dataset: ReplayBufferBase, next_observations: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float64) over the training observations and next observations, as RIQL
    computes them over its (corrupted) `observations` and `next_observations` arrays. Without
    a separate array, the next observations are d3rlpy's (the next row; the last row of an
    episode counts itself)."""
    observations = np.concatenate([np.asarray(e.observations) for e in dataset.episodes])
    if next_observations is None:
        next_observations = np.concatenate(
            [np.concatenate([e.observations[1:], e.observations[-1:]]) for e in dataset.episodes]
        )
    both = np.concatenate([observations, next_observations]).astype(np.float64)
    return both.mean(axis=0), both.std(axis=0)


class RIQLImpl(IQLImpl):
    """IQLImpl with RIQL's quantile target for V and the actor, and its Q loss."""

    def __init__(
        self,
        *args: Any,
        quantile: float,
        q_loss: str,
        huber_sigma: float,
        target_range: tuple[float, float] | None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._quantile = quantile
        self._q_loss = q_loss
        self._huber_threshold = 1.0 / huber_sigma**2
        self._target_range = target_range

    def _target_quantile(self, batch: TorchMiniBatch) -> torch.Tensor:
        """The quantile across target critics of Q(s, a), shape (B, 1)."""
        values = self._targ_q_func_forwarder.compute_expected_q(
            batch.observations, batch.actions, "none"
        )
        return torch.quantile(values, self._quantile, dim=0)

    def compute_critic_loss(self, batch: TorchMiniBatch, q_tpn: torch.Tensor) -> IQLCriticLoss:
        # d3rlpy's compute_ensemble_q_function_error with RIQL's target clipping and loss;
        # the same operations in the same order, so q_loss squared is d3rlpy's bitwise.
        gamma = self._gamma**batch.intervals
        y = batch.rewards + gamma * q_tpn * (1 - batch.terminals)
        if self._target_range is not None:
            y = y.clamp(*self._target_range)
        q_loss = torch.tensor(0.0, dtype=torch.float32, device=batch.observations.device)
        for forwarder in self._q_func_forwarder._forwarders:
            value = forwarder.compute_expected_q(batch.observations, batch.actions)
            if self._q_loss == "squared":
                loss = F.mse_loss(value, y, reduction="none")
            else:
                loss = F.smooth_l1_loss(value, y, reduction="none", beta=self._huber_threshold)
            q_loss += loss.mean()
        v_loss = self.compute_value_loss(batch)
        return IQLCriticLoss(critic_loss=q_loss + v_loss, q_loss=q_loss, v_loss=v_loss)

    def compute_value_loss(self, batch: TorchMiniBatch) -> torch.Tensor:
        q_t = self._target_quantile(batch)
        v_t = self._modules.value_func(batch.observations)
        diff = q_t.detach() - v_t
        weight = (self._expectile - (diff < 0.0).float()).abs().detach()
        return (weight * (diff**2)).mean()

    def _compute_weight(self, batch: TorchMiniBatch) -> torch.Tensor:
        q_t = self._target_quantile(batch)
        v_t = self._modules.value_func(batch.observations)
        adv = q_t - v_t
        return (self._weight_temp * adv).exp().clamp(max=self._max_weight)


class RIQL(IQL, TrainingHooks):
    """d3rlpy's IQL built with RIQLImpl; samrl's trainer sets the observation scaler
    (`samrl_prepare`) before the build. With d3rlpy's own fit, call `samrl_prepare(dataset)`
    first, or observations are not normalised."""

    _config: RIQLConfig

    def inner_create_impl(self, observation_shape: Shape, action_size: int) -> None:
        super().inner_create_impl(observation_shape, action_size)  # IQL's modules, same RNG
        iql = self._impl
        assert iql is not None
        config = self._config
        target_range = (config.target_min, config.target_max) if config.clip_targets else None
        self._impl = RIQLImpl(
            observation_shape=observation_shape,
            action_size=action_size,
            modules=iql._modules,
            q_func_forwarder=iql._q_func_forwarder,
            targ_q_func_forwarder=iql._targ_q_func_forwarder,
            gamma=config.gamma,
            tau=config.tau,
            expectile=config.expectile,
            weight_temp=config.weight_temp,
            max_weight=config.max_weight,
            compiled=self.compiled,
            device=self._device,
            quantile=config.quantile,
            q_loss=config.q_loss,
            huber_sigma=config.huber_sigma,
            target_range=target_range,
        )

    def samrl_prepare(
        self, dataset: ReplayBufferBase, next_observations: np.ndarray | None = None
    ) -> None:
        self._set_scaler(dataset, next_observations)

    def _set_scaler(self, dataset: ReplayBufferBase, next_observations: np.ndarray | None) -> None:
        config = self._config
        if not config.normalize_observations or config.observation_scaler is not None:
            return
        mean, std = observation_statistics(dataset, next_observations)
        scaler = StandardObservationScaler(
            mean=mean.astype(np.float32), std=std.astype(np.float32), eps=NORMALIZATION_EPS
        )
        # a copy: the config this algorithm was created from is its caller's, who may create
        # other algorithms from it (samrl.config.build.algo_config builds one per run)
        self._config = dataclasses.replace(config, observation_scaler=scaler)
