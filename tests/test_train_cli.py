"""`samrl train` end to end through the CLI entry point, on tiny configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import crash_before_checkpoint, run_cli, tiny_config, write_config


def run_dir_of(config: dict[str, Any], tmp_path: Path) -> Path:
    runs = list((tmp_path / "runs" / config["name"]).iterdir())
    assert len(runs) == 1
    return runs[0]


def test_train_writes_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tiny_config(tmp_path, dataset={"test_fraction": 0.2}, train={"eval_episodes": 1})
    code, out, _ = run_cli(
        ["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys
    )
    assert code == 0
    run_dir = tmp_path / "runs" / "tiny" / "cql_pendulum-random_sam-rho0.05_s0"
    assert str(run_dir) in out and out.strip().count("\n") == 0  # one summary line
    for name in ("config.yaml", "loss.csv", "sharpness.csv", "eval.csv", "status.json"):
        assert (run_dir / name).is_file(), name
    loss = pd.read_csv(run_dir / "loss.csv")
    assert list(loss["epoch"]) == [1, 2, 3] and list(loss["step"]) == [10, 20, 30]
    assert {"critic_loss", "actor_loss", "conservative_loss"} <= set(loss.columns)
    assert not any(c.endswith("_sharpness") for c in loss.columns)
    sharp = pd.read_csv(run_dir / "sharpness.csv")
    for net in ("critic", "actor"):
        for metric in ("sharpness", "loss_perturbed", "grad_norm"):
            assert sharp[f"{net}_{metric}"].notna().all()
    evals = pd.read_csv(run_dir / "eval.csv")
    assert {
        "return_mean",
        "return_std",
        "normalized_score",
        "td_error",
        "value_estimate",
        "action_diff",
    } <= set(evals.columns)
    assert len(evals) == 3
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "completed" and status["steps_done"] == 30
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["samrl"]["d3rlpy"] == "2.8.1" and resolved["samrl"]["device"] == "cpu"
    assert sorted(resolved["optim"]["networks"]) == ["actor", "critic"]
    assert sorted(p.name for p in (run_dir / "d3rlpy").glob("model_*.d3")) == [
        "model_10.d3",
        "model_20.d3",
        "model_30.d3",
    ]
    assert (run_dir / "d3rlpy" / "critic_loss.csv").is_file()


def test_logged_epoch_means_match_d3rlpys_own_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """loss.csv is recomputed independently by d3rlpy's FileAdapter (epoch,step,value)."""
    config = tiny_config(tmp_path)
    run_cli(["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys)
    run_dir = run_dir_of(config, tmp_path)
    loss = pd.read_csv(run_dir / "loss.csv")
    sharp = pd.read_csv(run_dir / "sharpness.csv")
    for table in (loss, sharp):
        for column in table.columns[2:]:
            theirs = pd.read_csv(
                run_dir / "d3rlpy" / f"{column}.csv", names=["epoch", "step", "value"]
            )
            assert list(theirs["value"]) == pytest.approx(list(table[column]), rel=1e-12)


def test_sharpness_is_perturbed_minus_unperturbed_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = tiny_config(tmp_path, algo={"name": "bc", "params": {"batch_size": 16}})
    run_cli(["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys)
    run_dir = run_dir_of(config, tmp_path)
    loss = pd.read_csv(run_dir / "loss.csv")
    sharp = pd.read_csv(run_dir / "sharpness.csv")
    # BC's one network is `policy`; `loss` is d3rlpy's name for its loss
    assert sharp["policy_sharpness"].to_numpy() == pytest.approx(
        (sharp["policy_loss_perturbed"] - loss["loss"]).to_numpy(), abs=1e-5
    )


def test_same_seed_gives_byte_identical_csvs(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tiny_config(tmp_path, optim={"name": "adam", "probe": {"rho": 0.05, "every": 3}})
    path = write_config(tmp_path, config)
    run_cli(["train", "--config", str(path), "--quiet"], capsys)
    run_dir = run_dir_of(config, tmp_path)
    first = {n: (run_dir / n).read_bytes() for n in ("loss.csv", "sharpness.csv")}
    code, _, _ = run_cli(["train", "--config", str(path), "--quiet", "--overwrite"], capsys)
    assert code == 0
    assert {n: (run_dir / n).read_bytes() for n in first} == first


def test_rho_zero_gives_the_adam_loss_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    adam = tiny_config(tmp_path, name="adam", optim={"name": "adam"}, train={"eval_episodes": 1})
    sam = tiny_config(
        tmp_path, name="sam0", optim={"name": "sam", "rho": 0.0}, train={"eval_episodes": 1}
    )
    for config in (adam, sam):
        code, _, _ = run_cli(
            ["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys
        )
        assert code == 0
    adam_dir, sam_dir = run_dir_of(adam, tmp_path), run_dir_of(sam, tmp_path)
    for name in ("loss.csv", "eval.csv"):
        assert (adam_dir / name).read_bytes() == (sam_dir / name).read_bytes()
    sharp = pd.read_csv(sam_dir / "sharpness.csv")
    assert (sharp[["critic_sharpness", "actor_sharpness"]] == 0.0).all().all()


def test_set_overrides_and_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write_config(tmp_path, tiny_config(tmp_path))
    code, out, _ = run_cli(
        [
            "train",
            "--config",
            str(path),
            "--dry-run",
            "--set",
            "optim.rho=0.2",
            "--set",
            "train.seed=3",
            "--set",
            "optim.networks=[critic]",
        ],
        capsys,
    )
    assert code == 0
    resolved = yaml.safe_load(out)
    assert resolved["optim"]["rho"] == 0.2 and resolved["train"]["seed"] == 3
    assert resolved["optim"]["networks"] == ["critic"]
    assert "cql_pendulum-random_sam-rho0.2_s3" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_existing_run_directory_needs_resume_or_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = write_config(tmp_path, tiny_config(tmp_path))
    assert run_cli(["train", "--config", str(path), "--quiet"], capsys)[0] == 0
    code, _, err = run_cli(["train", "--config", str(path), "--quiet"], capsys)
    assert code == 2 and "--resume" in err and err.count("\n") == 1
    code, out, _ = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 0 and "already completed" in out
    code, _, err = run_cli(
        [
            "train",
            "--config",
            str(path),
            "--quiet",
            "--resume",
            "--set",
            "optim.rho=0.3",
            "--set",
            "output.run_id=x",
        ],
        capsys,
    )
    assert code == 0
    changed = [
        "--set",
        "train.n_steps_per_epoch=5",
        "--set",
        "output.run_id=cql_pendulum-random_sam-rho0.05_s0",
    ]
    code, _, err = run_cli(
        ["train", "--config", str(path), "--quiet", "--resume", *changed], capsys
    )
    assert code == 2 and "different config" in err


@pytest.mark.parametrize(
    "optim",
    [
        {"name": "sam", "rho": 0.05},
        {"name": "adam", "probe": {"rho": 0.05, "every": 3}},
        # resumed at update 20 of k = 3: the stored direction of update 18 comes from the checkpoint
        {"name": "looksam", "rho": 0.05, "k": 3},
        # the schedulers' positions come from the checkpoint (cosine periods of 14 and 6 updates)
        {
            "name": "sam",
            "rho": 0.05,
            "lr_scheduler": {
                "actor": {"type": "cosine_annealing", "params": {"T_max": 7}},
                "critic": {"type": "cosine_annealing", "params": {"T_max": 3}},
            },
        },
    ],
    ids=["sam", "probe", "looksam", "lr_scheduler"],
)
def test_resume_after_a_crash_gives_the_uninterrupted_csvs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    optim: dict[str, Any],
):
    config = tiny_config(
        tmp_path,
        optim=optim,
        train={"n_steps": 40, "eval_episodes": 1},
        algo={"name": "td3_plus_bc", "params": {"batch_size": 16}},
    )
    path = write_config(tmp_path, config)
    assert run_cli(["train", "--config", str(path), "--quiet"], capsys)[0] == 0
    run_dir = run_dir_of(config, tmp_path)
    names = ("loss.csv", "sharpness.csv", "eval.csv")
    reference = {n: (run_dir / n).read_bytes() for n in names}

    with monkeypatch.context() as patch:
        crash_before_checkpoint(patch, 3)
        code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--overwrite"], capsys)
    assert code == 1 and "simulated crash" in err
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"
    assert len(pd.read_csv(run_dir / "loss.csv")) == 3  # epoch 3 written, not checkpointed
    code, _, _ = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 0
    assert {n: (run_dir / n).read_bytes() for n in names} == reference
    d3_log = (run_dir / "d3rlpy" / "critic_loss.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in d3_log] == ["1", "2", "3", "4"]


def test_divergence_stops_the_run_and_keeps_what_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = tiny_config(
        tmp_path,
        algo={"name": "bc", "params": {"batch_size": 16, "learning_rate": 1e30}},
        train={"n_steps": 50},
    )
    code, _, err = run_cli(
        ["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys
    )
    assert code == 1 and "diverged" in err and "non-finite" in err
    run_dir = run_dir_of(config, tmp_path)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "diverged" and status["epochs_done"] < 5
    assert len(pd.read_csv(run_dir / "loss.csv")) == status["epochs_done"]


def test_discrete_algorithm_trains_on_cartpole(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tiny_config(
        tmp_path,
        algo={"name": "dqn", "params": {"batch_size": 16}},
        dataset={"name": "cartpole-random", "test_fraction": 0.2},
        train={"eval_episodes": 1},
    )
    code, _, _ = run_cli(
        ["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys
    )
    assert code == 0
    run_dir = run_dir_of(config, tmp_path)
    assert "q_sharpness" in pd.read_csv(run_dir / "sharpness.csv").columns
    assert "action_match" in pd.read_csv(run_dir / "eval.csv").columns


def test_trained_model_loads_with_d3rlpy(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    import d3rlpy
    import numpy as np

    import samrl.sam

    config = tiny_config(tmp_path)
    run_cli(["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys)
    algo = d3rlpy.load_learnable(str(run_dir_of(config, tmp_path) / "d3rlpy" / "model_30.d3"))
    samrl.sam.install(algo)
    assert algo.predict(np.zeros((1, 3), dtype=np.float32)).shape == (1, 1)


def test_main_module_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "samrl", "train", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "Example" in result.stdout
