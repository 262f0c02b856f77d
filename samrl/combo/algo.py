"""COMBO on d3rlpy 2.x: its config (COMBOConfig; samrl.register() lets load_learnable find it)
and the algorithm (COMBO, a QLearningAlgoBase around COMBOImpl, plus dynamics pretraining).

Config and algorithm share one module, as in every d3rlpy algorithm module: each names the
other (`COMBOConfig.create` builds a COMBO, COMBO reads its COMBOConfig), and two modules would
import each other.
"""

# No `from __future__ import annotations`: d3rlpy's (de)serializer reads the config's field types.

import dataclasses
import math
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from d3rlpy.algos.qlearning.base import QLearningAlgoBase
from d3rlpy.base import DeviceArg, LearnableConfig
from d3rlpy.constants import ActionSpace
from d3rlpy.dataset import ReplayBufferBase, TransitionMiniBatch
from d3rlpy.models.builders import (
    create_continuous_q_function,
    create_normal_policy,
    create_parameter,
)
from d3rlpy.models.encoders import EncoderFactory, VectorEncoderFactory, make_encoder_field
from d3rlpy.models.q_functions import QFunctionFactory, make_q_func_field
from d3rlpy.optimizers.optimizers import OptimizerFactory, make_optimizer_field
from d3rlpy.types import Shape

from samrl.combo.dynamics import DynamicsBatch, ProbabilisticEnsemble
from samrl.combo.impl import COMBOImpl, COMBOModules, RolloutSettings
from samrl.combo.pretrain import DYNAMICS_COLUMNS, DYNAMICS_CSV, train_dynamics
from samrl.combo.rollout import Transitions as RolloutTransitions
from samrl.run.hooks import TrainingHooks
from samrl.validate import require, require_each


def _dynamics_encoder_field() -> EncoderFactory:
    # MBPO/COMBO's model network: 4 x 200 swish units per member.
    metadata = make_encoder_field().metadata
    return dataclasses.field(  # type: ignore[return-value]
        metadata=metadata,
        default_factory=lambda: VectorEncoderFactory(hidden_units=[200] * 4, activation="swish"),
    )


@dataclasses.dataclass()
class COMBOConfig(LearnableConfig):
    r"""Config of COMBO (Yu et al. 2021, Conservative Offline Model-Based Policy Optimization).

    A SAC actor-critic trained on a mix of real and model-generated transitions; the critic is
    penalized on model states and rewarded on real (state, action) pairs:

    .. math::

        L(\theta) = \beta \left(\mathbb{E}_{s \sim d_{model}}
            \left[\log \sum_a \exp Q_\theta(s, a)\right]
            - \mathbb{E}_{(s, a) \sim D}\left[Q_\theta(s, a)\right]\right)
            + L_\mathrm{TD}(\theta; f D + (1 - f) d_{model})

    The dynamics model is a probabilistic ensemble over (s' - s, r), trained on the dataset
    before the policy (`samrl_pretrain`, or automatically by d3rlpy's `fit`).

    Args (beyond d3rlpy's CQL):
        dynamics_learning_rate: learning rate of the dynamics model.
        dynamics_optim_factory / dynamics_encoder_factory: its optimizer and member network.
        dynamics_ensemble_size: members of the ensemble.
        dynamics_batch_size: minibatch size of dynamics training.
        dynamics_max_epochs: upper bound on dynamics training epochs.
        dynamics_patience: epochs without a better validation NLL before stopping.
        dynamics_holdout_ratio: share of transitions held out for validation.
        rollout_interval: policy updates between two rounds of model rollouts.
        rollout_horizon: model steps per rollout.
        rollout_batch_size: rollouts (start states) per round.
        rollout_retain: rounds of rollouts kept in the FIFO model buffer (capacity
            rollout_retain * rollout_batch_size * rollout_horizon transitions).
        real_ratio: share of real transitions in each training minibatch.
        conservative_weight: beta above (applied to the penalty, unlike d3rlpy 1.x).
        n_action_samples: policy and uniform action samples each in the logsumexp.
        soft_q_backup: SAC's entropy term in the TD target (off, as d3rlpy's CQL/COMBO).
    """

    actor_learning_rate: float = 1e-4
    critic_learning_rate: float = 3e-4
    temp_learning_rate: float = 1e-4
    dynamics_learning_rate: float = 1e-3
    actor_optim_factory: OptimizerFactory = make_optimizer_field()
    critic_optim_factory: OptimizerFactory = make_optimizer_field()
    temp_optim_factory: OptimizerFactory = make_optimizer_field()
    dynamics_optim_factory: OptimizerFactory = make_optimizer_field()
    actor_encoder_factory: EncoderFactory = make_encoder_field()
    critic_encoder_factory: EncoderFactory = make_encoder_field()
    dynamics_encoder_factory: EncoderFactory = _dynamics_encoder_field()
    q_func_factory: QFunctionFactory = make_q_func_field()
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    n_critics: int = 2
    initial_temperature: float = 1.0
    conservative_weight: float = 1.0
    n_action_samples: int = 10
    soft_q_backup: bool = False
    dynamics_ensemble_size: int = 5
    dynamics_batch_size: int = 256
    dynamics_max_epochs: int = 100
    dynamics_patience: int = 5
    dynamics_holdout_ratio: float = 0.2
    rollout_interval: int = 1000
    rollout_horizon: int = 5
    rollout_batch_size: int = 50000
    rollout_retain: int = 5
    real_ratio: float = 0.5

    def __post_init__(self) -> None:
        require(0.0 <= self.real_ratio <= 1.0, "real_ratio", "must be in [0, 1]", self.real_ratio)
        require(
            0.0 < self.dynamics_holdout_ratio < 1.0,
            "dynamics_holdout_ratio",
            "must be in (0, 1)",
            self.dynamics_holdout_ratio,
        )
        require_each(
            self,
            ">= 1",
            "rollout_horizon",
            "rollout_interval",
            "rollout_batch_size",
            "rollout_retain",
            "dynamics_ensemble_size",
            "dynamics_batch_size",
            "dynamics_max_epochs",
            "dynamics_patience",
            "n_action_samples",
            "n_critics",
            "batch_size",
        )
        require_each(self, ">= 0", "conservative_weight", "temp_learning_rate")
        require_each(self, "> 0", "initial_temperature")
        # CUDA graphs need fixed-shape batches copied field by field; mixed batches carry more.
        require(not self.compile_graph, "compile_graph", "is not supported by COMBO", True)

    @property
    def model_buffer_capacity(self) -> int:
        return self.rollout_retain * self.rollout_batch_size * self.rollout_horizon

    def create(self, device: DeviceArg = False, enable_ddp: bool = False) -> "COMBO":
        return COMBO(self, device, enable_ddp)

    @staticmethod
    def get_type() -> str:
        return "combo"


class COMBO(QLearningAlgoBase[COMBOImpl, COMBOConfig], TrainingHooks):
    """COMBO on d3rlpy 2.x. With d3rlpy's own `fit`, the dynamics model is trained on the
    dataset before the first update; samrl's trainer calls `samrl_pretrain` itself, and
    checkpoints the model buffer through the other TrainingHooks (samrl/run/hooks.py)."""

    _config: COMBOConfig
    _rollout_dataset: ReplayBufferBase | None = None
    _pretrain_pending: bool = False
    _pretrain_metrics: dict[str, float] | None = None

    def inner_create_impl(self, observation_shape: Shape, action_size: int) -> None:
        config = self._config
        if len(observation_shape) != 1 or isinstance(observation_shape[0], list | tuple):
            raise ValueError(f"COMBO needs vector observations, got shape {observation_shape}")
        modules, q_func_forwarder, targ_q_func_forwarder = self._create_modules(
            observation_shape, action_size
        )
        self._impl = COMBOImpl(
            observation_shape=observation_shape,
            action_size=action_size,
            modules=modules,
            q_func_forwarder=q_func_forwarder,
            targ_q_func_forwarder=targ_q_func_forwarder,
            gamma=config.gamma,
            tau=config.tau,
            conservative_weight=config.conservative_weight,
            n_action_samples=config.n_action_samples,
            soft_q_backup=config.soft_q_backup,
            rollout=RolloutSettings(
                interval=config.rollout_interval,
                horizon=config.rollout_horizon,
                batch_size=config.rollout_batch_size,
                real_ratio=config.real_ratio,
            ),
            model_buffer_capacity=config.model_buffer_capacity,
            device=self._device,
        )

    def _create_modules(
        self, observation_shape: Shape, action_size: int
    ) -> tuple[COMBOModules, Any, Any]:
        """The networks (created in d3rlpy's order: the same initial weights for a seed) and
        their optimizers; with the critic's and its target's forwarders."""
        config = self._config
        policy = create_normal_policy(
            observation_shape,
            action_size,
            config.actor_encoder_factory,
            device=self._device,
            enable_ddp=self._enable_ddp,
        )

        def q_functions() -> Any:  # the critic, then its target: built alike, in this order
            return create_continuous_q_function(
                observation_shape,
                action_size,
                config.critic_encoder_factory,
                config.q_func_factory,
                n_ensembles=config.n_critics,
                device=self._device,
                enable_ddp=self._enable_ddp,
            )

        q_funcs, q_func_forwarder = q_functions()
        targ_q_funcs, targ_q_func_forwarder = q_functions()
        log_temp = create_parameter(
            (1, 1),
            math.log(config.initial_temperature),
            device=self._device,
            enable_ddp=self._enable_ddp,
        )
        dynamics = ProbabilisticEnsemble(
            int(observation_shape[0]),
            action_size,
            config.dynamics_encoder_factory,
            config.dynamics_ensemble_size,
        ).to(self._device)

        optimizer = self._optimizer
        temp_optim = None
        if config.temp_learning_rate > 0:
            temp_optim = optimizer(config.temp_optim_factory, log_temp, config.temp_learning_rate)
        modules = COMBOModules(
            policy=policy,
            q_funcs=q_funcs,
            targ_q_funcs=targ_q_funcs,
            log_temp=log_temp,
            actor_optim=optimizer(config.actor_optim_factory, policy, config.actor_learning_rate),
            critic_optim=optimizer(
                config.critic_optim_factory, q_funcs, config.critic_learning_rate
            ),
            temp_optim=temp_optim,
            dynamics=dynamics,
            dynamics_optim=optimizer(
                config.dynamics_optim_factory, dynamics, config.dynamics_learning_rate
            ),
        )
        return modules, q_func_forwarder, targ_q_func_forwarder

    def _optimizer(self, factory: Any, modules: Any, lr: float) -> Any:
        return factory.create(modules.named_modules(), lr=lr, compiled=self.compiled)

    def get_action_type(self) -> ActionSpace:
        return ActionSpace.CONTINUOUS

    # --- data in the impl's space -------------------------------------------------------------

    def _to_impl_space(self, array: np.ndarray, scaler: Any) -> torch.Tensor:
        tensor = torch.as_tensor(np.asarray(array, dtype=np.float32), device=self._device)
        return scaler.transform(tensor) if scaler is not None else tensor

    def dynamics_data(self, dataset: ReplayBufferBase) -> DynamicsBatch:
        """Every (s, a, r, s') with a stored s' (each episode's last step has none), scaled like
        the minibatches the impl sees."""
        parts: dict[str, list[np.ndarray]] = {"o": [], "a": [], "r": [], "n": []}
        for episode in dataset.episodes:
            if episode.size() < 2:
                continue
            parts["o"].append(episode.observations[:-1])
            parts["a"].append(episode.actions[:-1])
            parts["r"].append(episode.rewards[:-1])
            parts["n"].append(episode.observations[1:])
        if not parts["o"]:
            raise ValueError("the dataset has no episode with two or more steps")
        cfg = self._config
        observations = self._to_impl_space(np.concatenate(parts["o"]), cfg.observation_scaler)
        rewards = self._to_impl_space(np.concatenate(parts["r"]), cfg.reward_scaler)
        return DynamicsBatch(
            observations=observations,
            actions=self._to_impl_space(np.concatenate(parts["a"]), cfg.action_scaler),
            rewards=rewards.reshape(-1, 1),
            next_observations=self._to_impl_space(
                np.concatenate(parts["n"]), cfg.observation_scaler
            ),
            weights=torch.ones((1, observations.shape[0]), device=self._device),
        )

    def set_rollout_dataset(self, dataset: ReplayBufferBase) -> None:
        """Rollouts start from this dataset's states (all of them, sampled with replacement)."""
        assert self._impl is not None, "build the algorithm first"
        observations = np.concatenate([e.observations for e in dataset.episodes])
        self._impl.set_start_observations(
            self._to_impl_space(observations, self._config.observation_scaler)
        )
        self._rollout_dataset = dataset

    # --- resume -------------------------------------------------------------------------------

    def samrl_checkpoint_state(self) -> dict[str, Any]:
        """The model buffer is not a module: samrl's resume checkpoint carries it, as a dict of
        its tensors (checkpoint state holds plain containers only: samrl/run/hooks.py)."""
        assert self._impl is not None
        data = self._impl.model_buffer.data
        if data is None:
            return {"model_buffer": None}
        return {"model_buffer": {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}}

    def samrl_restore_checkpoint_state(self, state: dict[str, Any]) -> None:
        assert self._impl is not None
        data = state["model_buffer"]
        self._impl.model_buffer.data = (
            None if data is None else RolloutTransitions(**data).to(self._device)
        )

    # --- training -----------------------------------------------------------------------------

    def samrl_pretrain(
        self,
        dataset: ReplayBufferBase,
        *,
        run_dir: Path | str | None = None,
        progress: bool = False,
        stream: IO[str] | None = None,
    ) -> list[dict[str, float]]:
        """Train the dynamics model (unless already trained); rows also go to
        `<run_dir>/dynamics.csv` as each epoch ends."""
        assert self._impl is not None, "build the algorithm first"
        self.set_rollout_dataset(dataset)
        self._pretrain_pending = False
        if bool(self._impl.dynamics.trained):
            return []
        cfg = self._config
        rows = train_dynamics(
            self._impl,
            self.dynamics_data(dataset),
            batch_size=cfg.dynamics_batch_size,
            max_epochs=cfg.dynamics_max_epochs,
            patience=cfg.dynamics_patience,
            holdout_ratio=cfg.dynamics_holdout_ratio,
            csv_path=Path(run_dir) / DYNAMICS_CSV if run_dir is not None else None,
            progress=progress,
            stream=stream,
        )
        # The dynamics network's SAM/probe metrics (dynamics_sharpness, ...) averaged over its
        # training epochs; reported once, with the first policy update, so they reach the
        # per-epoch tables beside the critic's and actor's (dynamics.csv has them per epoch).
        extra = sorted({k for row in rows for k in row} - set(DYNAMICS_COLUMNS))
        self._pretrain_metrics = {
            k: sum(row[k] for row in rows if k in row) / sum(k in row for row in rows)
            for k in extra
        }
        return rows

    def fitter(  # type: ignore[override]
        self, dataset: ReplayBufferBase, n_steps: int, *args: Any, **kwargs: Any
    ) -> Generator[tuple[int, dict[str, float]], None, None]:
        # d3rlpy builds the impl inside its fitter; the dynamics model is trained at the first
        # update (before any policy step) and rollouts start from this dataset's states.
        self._rollout_dataset = dataset
        self._pretrain_pending = n_steps > 0
        yield from super().fitter(dataset, n_steps, *args, **kwargs)

    def update(self, batch: TransitionMiniBatch) -> dict[str, float]:
        assert self._impl is not None
        if self._rollout_dataset is not None:
            if self._pretrain_pending:
                self.samrl_pretrain(self._rollout_dataset)
            elif self._impl.start_observations is None:
                self.set_rollout_dataset(self._rollout_dataset)
        metrics = super().update(batch)
        if self._pretrain_metrics:
            metrics.update(self._pretrain_metrics)
        self._pretrain_metrics = None
        return metrics
