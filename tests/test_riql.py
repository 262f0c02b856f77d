"""RIQL (samrl/riql): d3rlpy's IQL at its corner, RIQL's losses recomputed by hand, its
normalisation, and a corrupted SAM run through `samrl train` that resumes byte for byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import build, run_cli, state_differences, train
from d3rlpy.torch_utility import TorchMiniBatch

from samrl.config import load_config
from samrl.metrics import SHARPNESS, metric_name
from samrl.riql import observation_statistics
from samrl.run.train import run_training
from samrl.rundir import RunDir
from samrl.status import RunStatus

IQL_CORNER = {"quantile": 0.0, "q_loss": "squared", "normalize_observations": False}


def test_riql_at_iqls_corner_is_d3rlpys_iql_bitwise() -> None:
    iql, dataset = build("iql", n_critics=2, installed=False)
    riql, _ = build("riql", n_critics=2, installed=False, **IQL_CORNER)
    assert state_differences(iql, riql) == []  # the same initial weights
    assert train(iql, dataset, "iql") == train(riql, dataset, "riql")
    assert state_differences(iql, riql) == []


@pytest.mark.parametrize(
    "change", [{"quantile": 0.5}, {"q_loss": "huber", "huber_sigma": 3.0}, {"n_critics": 3}]
)
def test_away_from_the_corner_riql_is_not_iql(change: dict[str, Any]) -> None:
    iql, dataset = build("iql", n_critics=2, installed=False)
    riql, _ = build("riql", installed=False, **{"n_critics": 2, **IQL_CORNER, **change})
    train(iql, dataset, "iql")
    train(riql, dataset, "riql")
    assert state_differences(iql, riql) != []


def _riql_huber(diff: torch.Tensor, sigma: float) -> torch.Tensor:
    """RIQL.py's huber_loss, written as there."""
    beta = 1.0 / sigma**2
    diff = torch.abs(diff)
    return torch.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta)


@pytest.mark.parametrize(("quantile", "sigma"), [(0.25, 3.0), (0.1, 0.1), (0.5, 1.0)])
def test_losses_recomputed_as_riql_writes_them(quantile: float, sigma: float) -> None:
    algo, dataset = build(
        "riql",
        n_critics=3,
        quantile=quantile,
        huber_sigma=sigma,
        installed=False,
        target_min=-0.5,  # some targets clipped
        target_max=0.5,
    )
    np.random.seed(0)
    batch = TorchMiniBatch.from_batch(
        dataset.sample_transition_batch(16),
        gamma=algo.config.gamma,
        compute_returns_to_go=False,
        device="cpu",
    )
    impl = algo.impl
    mods = impl.modules
    with torch.no_grad():
        obs, act = batch.observations, batch.actions
        q = torch.stack([qf(obs, act).q_value for qf in mods.q_funcs])
        targ = torch.stack([qf(obs, act).q_value for qf in mods.targ_q_funcs])[..., 0]
        target_q = torch.from_numpy(np.quantile(targ.numpy(), quantile, axis=0))[:, None]
        next_v = mods.value_func(batch.next_observations)
        y = batch.rewards + algo.config.gamma * (1 - batch.terminals) * next_v
        y = y.clamp(-0.5, 0.5)
        q_loss = sum(_riql_huber(y - q[k], sigma).mean() for k in range(3))
        v = mods.value_func(obs)
        u = target_q - v
        v_loss = torch.mean(torch.abs(0.7 - (u < 0).float()) * u**2)
        weight = torch.exp(3.0 * u).clamp(max=100.0)
        loss = impl.compute_critic_loss(batch, impl.compute_target(batch))
        assert torch.allclose(loss.q_loss, q_loss, rtol=1e-5)
        assert torch.allclose(loss.v_loss, v_loss.float(), rtol=1e-5)
        assert torch.allclose(impl._compute_weight(batch), weight.float(), rtol=1e-5)


def test_normalisation_uses_observations_and_next_observations() -> None:
    algo, dataset = build("riql", installed=False)
    nxt = np.concatenate([e.observations for e in dataset.episodes]) * 3.0 + 7.0
    algo.samrl_prepare(dataset, nxt)  # before a build, as the trainer calls it
    scaler = algo.config.observation_scaler
    both = np.concatenate([np.concatenate([e.observations for e in dataset.episodes]), nxt])
    assert np.allclose(scaler.mean, both.mean(axis=0), rtol=1e-6)
    assert np.allclose(scaler.std, both.std(axis=0), rtol=1e-6)
    assert scaler.eps == 1e-3
    mean, std = observation_statistics(dataset)  # without a separate array: d3rlpy's rows
    assert mean.shape == (3,) and np.all(std > 0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"quantile": 1.5}, "quantile must be in [0, 1]"),
        ({"q_loss": "l1"}, "q_loss must be huber or squared"),
        ({"huber_sigma": 0}, "huber_sigma must be > 0"),
    ],
)
def test_bad_riql_parameters_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: dict[str, Any], message: str
) -> None:
    import yaml

    path = tmp_path / "c.yaml"
    config = {"algo": {"name": "riql", "params": params}, "dataset": {"name": "pendulum-random"}}
    path.write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["train", "--config", str(path), "--dry-run"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert message in err


CONFIG = """
algo:
  name: riql
  params:
    batch_size: 16
    n_critics: 3
    quantile: 0.25
    huber_sigma: 0.5
    actor_encoder_factory: {type: vector, params: {hidden_units: [8]}}
    critic_encoder_factory: {type: vector, params: {hidden_units: [8]}}
    value_encoder_factory: {type: vector, params: {hidden_units: [8]}}
dataset:
  name: pendulum-random
  size: 1000
  test_fraction: 0.2
  corruption: {fields: [observations, next_observations, rewards], rate: 0.3, scale: 1.0}
optim: {name: sam, rho: 0.05, networks: [critic]}
train: {n_steps: 30, n_steps_per_epoch: 10, eval_episodes: 1}
output: {dir: OUT}
"""
NAMES = ("loss.csv", "sharpness.csv", "eval.csv")


def test_corrupted_riql_with_sam_resumes_to_the_same_csvs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    path = tmp_path / "riql.yaml"
    path.write_text(CONFIG.replace("OUT", str(tmp_path / "runs")))
    config = load_config(path)
    reference = run_training(config, progress=False)
    assert reference.status == RunStatus.COMPLETED, reference.message
    sharpness = pd.read_csv(reference.run_dir / "sharpness.csv")
    column = metric_name("critic", SHARPNESS)
    assert column in sharpness.columns and sharpness[column].notna().all()
    evals = pd.read_csv(reference.run_dir / "eval.csv")
    assert evals["td_error"].notna().all()  # on the clean held-out episodes
    expected = {n: (reference.run_dir / n).read_bytes() for n in NAMES}

    real = RunDir.save_checkpoint

    def crash_at_epoch_2(run: RunDir, algo: Any, epoch: int, step: int, extra: Any) -> None:
        if epoch == 2:
            raise RuntimeError("simulated crash")
        real(run, algo, epoch, step, extra)

    with monkeypatch.context() as patch:
        patch.setattr(RunDir, "save_checkpoint", crash_at_epoch_2)
        crashed = run_training(config, overwrite=True, progress=False)
    assert crashed.status == RunStatus.FAILED
    resumed = run_training(config, resume=True, progress=False)
    assert resumed.status == RunStatus.COMPLETED, resumed.message
    assert {n: (resumed.run_dir / n).read_bytes() for n in NAMES} == expected


def test_importing_riql_registers_nothing_and_samrl_register_registers_it(tmp_path: Path) -> None:
    """As for COMBO (#23): d3rlpy finds RIQL only after `samrl.register()`."""
    import subprocess
    import sys

    path = tmp_path / "riql.d3"
    code = "\n".join(
        [
            "import d3rlpy, samrl",
            "from samrl.riql import RIQLConfig",
            "from samrl.testing.data import random_dataset",
            "algo = RIQLConfig(batch_size=8).create(device='cpu')",
            "algo.build_with_dataset(random_dataset(discrete=False))",
            f"algo.save({str(path)!r})",
            "try:",
            f"    d3rlpy.load_learnable({str(path)!r}, device='cpu')",
            "except Exception as exc:",
            "    print('refused', type(exc).__name__)",
            "samrl.register()",
            "from samrl.safeload import load_learnable",
            f"print('loaded', type(load_learnable({str(path)!r}, device='cpu')).__name__)",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "refused" in done.stdout and "loaded RIQL" in done.stdout, done.stdout


def test_riqls_scaler_leaves_the_built_config_untouched(tmp_path: Path) -> None:
    """samrl_prepare sets the scaler on the algorithm's own copy of its config, not on the
    d3rlpy config built from the Config (samrl.config.build.algo_config), which its caller may
    create other algorithms from."""
    import yaml

    from samrl.algos import algo_facts
    from samrl.config.build import algo_config
    from samrl.data import load_dataset
    from samrl.run.hooks import training_hooks

    path = tmp_path / "c.yaml"
    given = {
        "algo": {"name": "riql", "params": {"batch_size": 8}},
        "dataset": {"name": "pendulum-random", "size": 1000},
    }
    path.write_text(yaml.safe_dump(given))
    config = load_config(path)
    built = algo_config(algo_facts("riql"), config.algo.params, config.optim)
    algo = built.create(device="cpu")
    training_hooks(algo).samrl_prepare(load_dataset("pendulum-random", size=1000).train)
    assert algo.config.observation_scaler is not None
    assert built.observation_scaler is None
