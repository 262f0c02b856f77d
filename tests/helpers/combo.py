"""A small COMBO experiment config (OUT: the output directory)."""

CONFIG = """
name: combo_tiny
algo:
  name: combo
  params:
    batch_size: 32
    n_action_samples: 4
    actor_encoder_factory: {type: vector, params: {hidden_units: [16]}}
    critic_encoder_factory: {type: vector, params: {hidden_units: [16]}}
    dynamics_encoder_factory: {type: vector, params: {hidden_units: [16]}}
    dynamics_ensemble_size: 2
    dynamics_max_epochs: 3
    rollout_interval: 10
    rollout_batch_size: 64
    rollout_horizon: 2
dataset: {name: pendulum-random, size: 600}
optim: {name: sam, rho: 0.05}
train: {n_steps: 20, n_steps_per_epoch: 10, eval_episodes: 1, device: cpu}
output: {dir: OUT}
"""
