"""`samrl train` with Adam is d3rlpy's own `fit`, bitwise, only faster.

For each algorithm: train through the CLI (Adam, no probe, no evaluation), then train the
algorithm d3rlpy reads back from the run's saved model with `LearnableBase.fit` from the
same seeds, and compare every module tensor and optimizer state bitwise. This covers samrl's
vectorized sampler (same indices, same batches), its training loop and its build path.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import d3rlpy
import numpy as np
import pytest
import torch
from conftest import run_cli, state_differences, tiny_config, write_config
from d3rlpy.logging import NoopAdapterFactory

from samrl.data import load_dataset

N_STEPS, PER_EPOCH, SEED = 24, 12, 3
HIDDEN = {"type": "vector", "params": {"hidden_units": [8]}}

CASES = {
    "bc": ("pendulum-random", {"encoder_factory": HIDDEN}),
    "td3_plus_bc": (
        "pendulum-random",
        {"actor_encoder_factory": HIDDEN, "critic_encoder_factory": HIDDEN},
    ),
    "iql": (
        "pendulum-random",
        {
            "actor_encoder_factory": HIDDEN,
            "critic_encoder_factory": HIDDEN,
            "value_encoder_factory": HIDDEN,
        },
    ),
    "cql": (
        "pendulum-random",
        {
            "actor_encoder_factory": HIDDEN,
            "critic_encoder_factory": HIDDEN,
            "n_action_samples": 2,
        },
    ),
    "sac": ("pendulum-random", {"actor_encoder_factory": HIDDEN, "critic_encoder_factory": HIDDEN}),
    "dqn": ("cartpole-random", {"encoder_factory": HIDDEN}),
    "discrete_cql": ("cartpole-random", {"encoder_factory": HIDDEN}),
    "decision_transformer": (
        "pendulum-random",
        {
            "encoder_factory": HIDDEN,
            "context_size": 4,
            "num_heads": 1,
            "num_layers": 1,
            "max_timestep": 300,
        },
    ),
}


def _seed(seed: int) -> None:
    """What any careful d3rlpy user (and samrl's train) does before building."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    d3rlpy.seed(seed)


def _fit_with_d3rlpy(config: Any, dataset: Any) -> Any:
    _seed(SEED)
    algo = config.create(device="cpu:0")
    algo.fit(
        dataset,
        n_steps=N_STEPS,
        n_steps_per_epoch=PER_EPOCH,
        logger_adapter=NoopAdapterFactory(),
        show_progress=False,
    )
    return algo


@pytest.mark.parametrize("name", sorted(CASES))
def test_samrl_adam_is_d3rlpy_fit_bitwise(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset_name, params = CASES[name]
    config = tiny_config(
        tmp_path,
        algo={"name": name, "params": {"batch_size": 16, **params}},
        dataset={"name": dataset_name, "size": 1000},
        optim={"name": "adam"},
        train={"n_steps": N_STEPS, "n_steps_per_epoch": PER_EPOCH, "seed": SEED},
    )
    code, _, err = run_cli(["train", "--config", str(write_config(tmp_path, config))], capsys)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    samrl_algo = d3rlpy.load_learnable(str(run_dir / "d3rlpy" / f"model_{N_STEPS}.d3"))

    dataset = load_dataset(dataset_name, size=1000).train
    # the config d3rlpy itself read back from the run's model file (action scaler included)
    d3rlpy_algo = _fit_with_d3rlpy(samrl_algo.config, dataset)

    assert state_differences(samrl_algo, d3rlpy_algo) == []
    assert d3rlpy_algo.grad_step == N_STEPS
