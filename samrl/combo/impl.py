"""COMBOImpl: d3rlpy's CQLImpl with a dynamics model, model rollouts and COMBO's critic penalty.

One update (inner_update):
  1. every `rollout_interval` steps: model rollouts into the FIFO model buffer;
  2. the real minibatch is mixed with model transitions (`real_ratio` real);
  3. critic step on the mixed batch: TD error + conservative_weight * (logsumexp of Q over policy
     and uniform actions on the model states - Q on the real (state, action) pairs);
  4. actor (and temperature) step on the mixed batch, then the target networks.
Steps 1-2 happen outside the gradient calls, so a SAM step's second pass sees the same batch.
The dynamics model is trained through `_compute_dynamics_grad` + `dynamics_optim.step()` like
any other network, so the SAM engine handles it without special cases.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from d3rlpy.algos.qlearning.torch.cql_impl import CQLImpl
from d3rlpy.algos.qlearning.torch.ddpg_impl import DDPGBaseCriticLoss, DDPGBaseImpl
from d3rlpy.algos.qlearning.torch.sac_impl import SACModules
from d3rlpy.dataclass_utils import asdict_as_float
from d3rlpy.models.torch import ContinuousEnsembleQFunctionForwarder
from d3rlpy.optimizers import OptimizerWrapper
from d3rlpy.torch_utility import TorchMiniBatch
from d3rlpy.types import Shape

from samrl.combo.dynamics import DynamicsBatch, DynamicsLoss, ProbabilisticEnsemble
from samrl.combo.rollout import ModelBuffer, Transitions, rollout


@dataclasses.dataclass(frozen=True)
class COMBOModules(SACModules):
    dynamics: ProbabilisticEnsemble
    dynamics_optim: OptimizerWrapper


@dataclasses.dataclass(frozen=True)
class MixedMiniBatch(TorchMiniBatch):
    """Real and model transitions (TD rows), plus the states the conservative term pushes down
    (model states) and the real (state, action) pairs it pushes up."""

    penalty_observations: torch.Tensor | None = None
    data_observations: torch.Tensor | None = None
    data_actions: torch.Tensor | None = None


@dataclasses.dataclass(frozen=True)
class COMBOCriticLoss(DDPGBaseCriticLoss):
    td_loss: torch.Tensor
    conservative_loss: torch.Tensor


@dataclasses.dataclass(frozen=True)
class RolloutSettings:
    interval: int
    horizon: int
    batch_size: int
    real_ratio: float


class COMBOImpl(CQLImpl):
    _modules: COMBOModules  # type: ignore[assignment]

    def __init__(
        self,
        observation_shape: Shape,
        action_size: int,
        modules: COMBOModules,
        q_func_forwarder: ContinuousEnsembleQFunctionForwarder,
        targ_q_func_forwarder: ContinuousEnsembleQFunctionForwarder,
        gamma: float,
        tau: float,
        conservative_weight: float,
        n_action_samples: int,
        soft_q_backup: bool,
        rollout: RolloutSettings,
        model_buffer_capacity: int,
        device: str,
    ):
        super().__init__(
            observation_shape=observation_shape,
            action_size=action_size,
            modules=modules,  # type: ignore[arg-type]
            q_func_forwarder=q_func_forwarder,
            targ_q_func_forwarder=targ_q_func_forwarder,
            gamma=gamma,
            tau=tau,
            alpha_threshold=0.0,
            conservative_weight=conservative_weight,
            n_action_samples=n_action_samples,
            soft_q_backup=soft_q_backup,
            max_q_backup=False,
            compiled=False,
            device=device,
        )
        self._rollout = rollout
        self._model_buffer = ModelBuffer(model_buffer_capacity)
        self._start_observations: torch.Tensor | None = None
        self._compute_dynamics_grad = self.compute_dynamics_grad

    # --- dynamics -------------------------------------------------------------------------

    @property
    def dynamics(self) -> ProbabilisticEnsemble:
        return self._modules.dynamics

    def compute_dynamics_grad(self, batch: DynamicsBatch | TorchMiniBatch) -> DynamicsLoss:
        self._modules.dynamics_optim.zero_grad()
        loss = self._modules.dynamics.compute_loss(batch)
        loss.dynamics_loss.backward()
        return loss

    def update_dynamics(self, batch: DynamicsBatch) -> dict[str, float]:
        loss = self._compute_dynamics_grad(batch)
        self._modules.dynamics_optim.step()
        return asdict_as_float(loss)

    # --- rollouts and mixing ----------------------------------------------------------------

    @property
    def model_buffer(self) -> ModelBuffer:
        return self._model_buffer

    @property
    def start_observations(self) -> torch.Tensor | None:
        return self._start_observations

    def set_start_observations(self, observations: torch.Tensor) -> None:
        """Real states (impl space) that rollouts start from; without them, the real part of
        the current minibatch is used."""
        self._start_observations = observations.to(self._device)

    def generate_rollouts(self, fallback: torch.Tensor) -> Transitions:
        starts = self._start_observations if self._start_observations is not None else fallback
        index = torch.randint(starts.shape[0], (self._rollout.batch_size,), device=starts.device)
        transitions = rollout(
            self._modules.policy, self._modules.dynamics, starts[index], self._rollout.horizon
        )
        self._model_buffer.add(transitions)
        return transitions

    def mix(self, batch: TorchMiniBatch) -> MixedMiniBatch:
        assert isinstance(batch.observations, torch.Tensor), "COMBO needs vector observations"
        size = batch.observations.shape[0]
        n_real = round(self._rollout.real_ratio * size)
        n_model = size - n_real
        fields = {f.name: getattr(batch, f.name) for f in dataclasses.fields(TorchMiniBatch)}
        if n_model == 0 or len(self._model_buffer) == 0:
            return MixedMiniBatch(
                **fields,
                penalty_observations=batch.observations,
                data_observations=batch.observations,
                data_actions=batch.actions,
            )
        model = self._model_buffer.sample(n_model)
        zeros = torch.zeros((n_model, 1), device=model.rewards.device)

        def cat(real: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
            return torch.cat([real[:n_real], generated.to(real.dtype)])

        fields.update(
            observations=cat(batch.observations, model.observations),
            actions=cat(batch.actions, model.actions),
            rewards=cat(batch.rewards, model.rewards),
            next_observations=cat(batch.next_observations, model.next_observations),
            next_actions=cat(batch.next_actions, torch.zeros_like(model.actions)),
            returns_to_go=cat(batch.returns_to_go, zeros),
            terminals=cat(batch.terminals, zeros),  # model transitions are non-terminal
            intervals=cat(batch.intervals, zeros + 1.0),
            numpy_batch=None,
        )
        # The data term always compares with real pairs; real_ratio = 0 uses the whole real batch.
        data = slice(0, n_real) if n_real > 0 else slice(None)
        return MixedMiniBatch(
            **fields,
            penalty_observations=model.observations,
            data_observations=batch.observations[data],
            data_actions=batch.actions[data],
        )

    # --- critic -----------------------------------------------------------------------------

    def compute_critic_loss(self, batch: TorchMiniBatch, q_tpn: torch.Tensor) -> COMBOCriticLoss:
        td_loss = DDPGBaseImpl.compute_critic_loss(self, batch, q_tpn).critic_loss
        conservative_loss = self._conservative_weight * self.conservative_penalty(batch)
        return COMBOCriticLoss(
            critic_loss=td_loss + conservative_loss,
            td_loss=td_loss.detach(),
            conservative_loss=conservative_loss.detach(),
        )

    def conservative_penalty(self, batch: TorchMiniBatch) -> torch.Tensor:
        """Unweighted COMBO penalty, summed over critics: E_model-states[logsumexp_a Q(s, a)]
        - E_real[Q(s, a)]; the logsumexp runs over importance-weighted policy samples
        (Q - log pi) and uniform actions (Q - log(1/2^|A|)), as in d3rlpy's CQL."""
        penalty_obs = getattr(batch, "penalty_observations", None)
        data_obs = getattr(batch, "data_observations", None)
        data_act = getattr(batch, "data_actions", None)
        if penalty_obs is None or data_obs is None or data_act is None:
            penalty_obs, data_obs, data_act = batch.observations, batch.observations, batch.actions
        policy_values, log_probs = self._compute_policy_is_values(
            policy_obs=penalty_obs, value_obs=penalty_obs, returns_to_go=batch.returns_to_go
        )
        random_values, random_log_prob = self._compute_random_is_values(penalty_obs)
        # (critics, states, 2 n_action_samples) -> (critics, states)
        logsumexp = torch.logsumexp(
            torch.cat([policy_values - log_probs, random_values - random_log_prob], dim=2), dim=2
        )
        data_values = self._q_func_forwarder.compute_expected_q(data_obs, data_act, "none")
        return (logsumexp.mean(dim=1) - data_values.mean(dim=(1, 2))).sum()

    # --- the update -------------------------------------------------------------------------

    def inner_update(self, batch: Any, grad_step: int) -> dict[str, float]:
        # Dynamics pretraining steps come through update() too, so the SAM engine (which wraps
        # inner_update) returns their sharpness exactly as for the other networks.
        if isinstance(batch, DynamicsBatch):
            return self.update_dynamics(batch)
        if self._rollout.real_ratio < 1.0 and (
            grad_step % self._rollout.interval == 0 or len(self._model_buffer) == 0
        ):
            self.generate_rollouts(fallback=batch.observations)
        mixed = self.mix(batch)
        metrics = {}
        metrics.update(self.update_critic(mixed))
        metrics.update(self.update_actor(mixed))
        self.update_critic_target()
        return metrics
