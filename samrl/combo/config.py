"""COMBOConfig: d3rlpy-style config of COMBO, registered so d3rlpy.load_learnable finds it."""

# No `from __future__ import annotations`: d3rlpy's (de)serializer reads the field types.

import dataclasses

from d3rlpy.base import DeviceArg, LearnableConfig, register_learnable
from d3rlpy.models.encoders import EncoderFactory, VectorEncoderFactory, make_encoder_field
from d3rlpy.models.q_functions import QFunctionFactory, make_q_func_field
from d3rlpy.optimizers.optimizers import OptimizerFactory, make_optimizer_field

from samrl.combo.algo import COMBO


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
        _check(0.0 <= self.real_ratio <= 1.0, "real_ratio", "must be in [0, 1]", self.real_ratio)
        _check(
            0.0 < self.dynamics_holdout_ratio < 1.0,
            "dynamics_holdout_ratio",
            "must be in (0, 1)",
            self.dynamics_holdout_ratio,
        )
        for name in (
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
        ):
            value = getattr(self, name)
            _check(value >= 1, name, "must be >= 1", value)
        _check(
            self.conservative_weight >= 0.0,
            "conservative_weight",
            "must be >= 0",
            self.conservative_weight,
        )
        _check(
            self.temp_learning_rate >= 0.0,
            "temp_learning_rate",
            "must be >= 0",
            self.temp_learning_rate,
        )
        _check(
            self.initial_temperature > 0.0,
            "initial_temperature",
            "must be > 0",
            self.initial_temperature,
        )
        # CUDA graphs need fixed-shape batches copied field by field; mixed batches carry more.
        _check(not self.compile_graph, "compile_graph", "is not supported by COMBO", True)

    @property
    def model_buffer_capacity(self) -> int:
        return self.rollout_retain * self.rollout_batch_size * self.rollout_horizon

    def create(self, device: DeviceArg = False, enable_ddp: bool = False) -> COMBO:
        return COMBO(self, device, enable_ddp)

    @staticmethod
    def get_type() -> str:
        return "combo"


def _check(ok: bool, name: str, requirement: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{name} {requirement}, got {value!r}")


register_learnable(COMBOConfig)
