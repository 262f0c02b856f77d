"""Every algorithm trains end to end through `samrl train` (tiny): SAM, evaluation, held-out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import tiny_config, write_config

from samrl.algos import algorithm_table
from samrl.config import load_config
from samrl.run.train import run_training
from samrl.testing.data import tiny_params

ALGORITHMS = sorted(algorithm_table())


@pytest.mark.parametrize("name", ALGORITHMS)
def test_algorithm_trains_with_sam_and_evaluates(name: str, tmp_path: Path) -> None:
    facts = algorithm_table()[name]
    params = {k: v for k, v in tiny_params(facts).items() if not k.endswith("encoder_factory")}
    for field in ("actor", "critic", "imitator", "value", "dynamics", ""):
        key = f"{field}_encoder_factory" if field else "encoder_factory"
        if key in {f for f in facts.config_class.__dataclass_fields__}:
            params[key] = {"type": "vector", "params": {"hidden_units": [8]}}
    if facts.transformer:
        params["max_timestep"] = 500  # >= Pendulum's and CartPole's episode length
    if name == "combo":
        params.update(
            dynamics_ensemble_size=2,
            dynamics_max_epochs=2,
            rollout_batch_size=32,
            rollout_horizon=2,
            rollout_interval=4,
        )
    dataset = "cartpole-random" if facts.discrete else "pendulum-random"
    config = tiny_config(
        tmp_path,
        algo={"name": name, "params": params},
        dataset={"name": dataset, "size": 600, "test_fraction": 0.2},
        train={"n_steps": 6, "n_steps_per_epoch": 3, "eval_episodes": 1},
    )
    result = run_training(load_config(write_config(tmp_path, config)), progress=False)
    assert result.status == "completed", result.message
    sharpness = pd.read_csv(result.run_dir / "sharpness.csv")
    reported = {c.removesuffix("_sharpness") for c in sharpness.columns if c.endswith("_sharpness")}
    assert reported and reported <= set(facts.networks)
    evals = pd.read_csv(result.run_dir / "eval.csv")
    assert len(evals) == 2 and evals["return_mean"].notna().all()
    if not facts.transformer:
        assert "td_error" in evals.columns
