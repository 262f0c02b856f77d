"""Every user error in a config ends in one line naming the culprit and exit status 2."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli

from samrl.cli import main

BASE: dict[str, Any] = {
    "name": "bad",
    "algo": {"name": "cql", "params": {"batch_size": 16}},
    "dataset": {"name": "pendulum-random", "size": 500},
    "optim": {"name": "sam", "rho": 0.05},
    "train": {"n_steps": 10, "n_steps_per_epoch": 5, "eval_episodes": 0},
}


def dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *extra: str
) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    code, _, err = run_cli(["train", "--config", str(path), "--dry-run", *extra], capsys)
    return code, err


def with_change(key: str, value: Any) -> str:
    config = yaml.safe_load(yaml.safe_dump(BASE))
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return yaml.safe_dump(config)


CASES = [
    ("colour", "blue", "colour", "unknown key"),
    # dataset.corruption (RIQL's protocol)
    ("dataset.corruption", {"fields": ["rewardz"]}, "dataset.corruption.fields", "'rewards'"),
    ("dataset.corruption", {"rate": 0.3}, "dataset.corruption.fields", "must be a list"),
    ("dataset.corruption", {"fields": ["rewards"], "rate": 1.5}, "dataset.corruption.rate", "<= 1"),
    (
        "dataset.corruption",
        {"fields": ["rewards"], "rate": -0.1},
        "dataset.corruption.rate",
        ">= 0",
    ),
    (
        "dataset.corruption",
        {"fields": ["actions"], "scale": -1},
        "dataset.corruption.scale",
        "must be >= 0, got -1",
    ),
    (
        "dataset.corruption",
        {"fields": ["actions"], "mode": "adversarail"},
        "dataset.corruption.mode",
        "did you mean 'adversarial'",
    ),
    (
        "dataset.corruption",
        {"fields": ["actions"], "attacker": {"n_critics": 2}},
        "dataset.corruption.attacker",
        "only adversarial corruption",
    ),
    (
        "dataset.corruption",
        {"fields": ["actions"], "mode": "adversarial", "attacker": {"algo": "cql"}},
        "dataset.corruption.attacker.algo",
        "unknown attacker algorithm 'cql'",
    ),
    (
        "dataset.corruption",
        {"fields": ["actions"], "typo": 1},
        "dataset.corruption.typo",
        "unknown key",
    ),
    ("optim.rh0", 0.1, "optim.rh0", "did you mean 'rho'"),
    ("optim.rho", -0.1, "optim.rho", "must be >= 0, got -0.1"),
    ("optim.rho", "big", "optim.rho", "must be a number"),
    ("optim.name", "sma", "optim.name", "did you mean 'sam'"),
    ("optim.base", "adamm", "optim.base", "did you mean 'adam'"),
    ("optim.networks", ["critic", "temp"], "optim.networks[1]", "base optimizer"),
    ("optim.networks", ["critc"], "optim.networks[0]", "did you mean 'critic'"),
    ("optim.params", {"betaz": [0.9, 0.99]}, "optim.params.betaz", "did you mean 'betas'"),
    # values only torch checks, when the optimizer is made or steps: tried at once
    ("optim.params", {"eps": -1}, "optim.params", "rejected by torch: ValueError: Invalid epsilon"),
    ("optim.params", {"betas": [0.9]}, "optim.params", "rejected by torch: IndexError"),
    ("optim.params", {"clip_grad_norm": "big"}, "optim.params", "rejected by torch: ValueError"),
    (
        "optim.params",
        {"lr_scheduler_factory": {"type": "cosine_annealing", "params": {"T_max": 9}}},
        "optim.params.lr_scheduler_factory",
        "by network in optim.lr_scheduler",
    ),
    ("optim.probe", {"networks": ["value"]}, "optim.probe.networks[0]", "network for cql"),
    ("algo.name", "cq1", "algo.name", "did you mean 'cql'"),
    ("algo.params", {"batch_sise": 3}, "algo.params.batch_sise", "did you mean 'batch_size'"),
    ("algo.params", {"batch_size": "many"}, "algo.params.batch_size", "must be int"),
    ("algo.params", {"batch_size": 0}, "algo.params.batch_size", "must be >= 1, got 0"),
    ("algo.params", {"gamma": 1.5}, "algo.params.gamma", "must be in (0, 1]"),
    (
        "algo.params",
        {"critic_learning_rate": -1e-3},
        "algo.params.critic_learning_rate",
        "must be >= 0",
    ),
    (
        "algo.params",
        {"critic_optim_factory": {"type": "adam"}},
        "algo.params.critic_optim_factory",
        "optim section",
    ),
    (
        "algo.params",
        {"actor_encoder_factory": {"type": "vectr", "params": {}}},
        "algo.params.actor_encoder_factory.type",
        "unknown type",
    ),
    (  # encoders of flat observations are built on torch's meta device when resolved
        "algo.params",
        {"actor_encoder_factory": {"type": "vector", "params": {"activation": "relux"}}},
        "algo.params.actor_encoder_factory",
        "rejected by torch: ValueError: invalid activation_type",
    ),
    (
        "algo.params",
        {"critic_encoder_factory": {"type": "default", "params": {"dropout_rate": 2.0}}},
        "algo.params.critic_encoder_factory",
        "dropout probability has to be between 0 and 1",
    ),
    (
        "algo.params",
        {"actor_encoder_factory": {"type": "vector", "params": {"hidden_units": [8, 0]}}},
        "algo.params.actor_encoder_factory.params.hidden_units[1]",
        "must be >= 1, got 0",
    ),
    (
        "algo.params",
        {"critic_encoder_factory": {"type": "simba", "params": {"hidden_size": 0}}},
        "algo.params.critic_encoder_factory.params.hidden_size",
        "must be >= 1, got 0",
    ),
    ("algo", {"name": "iql", "params": {"expectile": 1.5}}, "algo.params.expectile", "(0, 1]"),
    (  # d3rlpy itself would drop the misspelt parameter without a word
        "algo.params",
        {"actor_encoder_factory": {"type": "vector", "params": {"hidden_unit": [8]}}},
        "algo.params.actor_encoder_factory.params.hidden_unit",
        "did you mean 'hidden_units'",
    ),
    ("dataset.name", "pendulum-meduim", "dataset.name", "did you mean 'pendulum-medium'"),
    ("dataset.name", "cartpole-random", "algo.name", "continuous-action algorithm"),
    ("dataset.size", 0, "dataset.size", "must be >= 1"),
    ("dataset.test_fraction", 2.0, "dataset.test_fraction", "must be <= 0.9"),
    ("train.n_steps", 0, "train.n_steps", "must be >= 1"),
    ("train.n_steps_per_epoch", 0, "train.n_steps_per_epoch", "must be >= 1"),
    ("train.n_steps", 2.5, "train.n_steps", "must be an integer"),
    ("train.device", "cuda", "train.device", "CUDA is not available"),
    ("train.device", "tpu", "train.device", "must be auto, cpu, cuda or cuda:N"),
    ("train.seed", -1, "train.seed", "must be >= 0"),
    ("train", [1, 2], "train", "must be a mapping"),
    ("name", "a/b", "name", "letters, digits"),
]


@pytest.mark.parametrize(
    ("key", "value", "culprit", "message"), CASES, ids=[f"{c[0]}={c[1]}" for c in CASES]
)
def test_config_error_is_one_line_with_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: Any,
    culprit: str,
    message: str,
):
    code, err = dry_run(tmp_path, capsys, with_change(key, value))
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"samrl: config error: {tmp_path / 'c.yaml'}: {culprit}: "), err
    assert message in err
    assert "Traceback" not in err


def test_transformer_max_timestep_must_cover_the_episodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    text = with_change("algo.name", "decision_transformer").replace(
        "batch_size: 16", "batch_size: 16\n    max_timestep: 100"
    )
    code, err = dry_run(tmp_path, capsys, text)
    assert code == 2
    assert "algo.params.max_timestep: must be >= the episode length of Pendulum-v1 (200)" in err


def test_discrete_algorithm_on_continuous_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    text = with_change("algo.name", "dqn")
    code, err = dry_run(tmp_path, capsys, text)
    assert code == 2 and "algo.name: 'dqn' is a discrete-action algorithm" in err


def test_malformed_yaml_reports_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, err = dry_run(tmp_path, capsys, "name: x\nalgo: {name: cql\noptim: [\n")
    assert code == 2 and "malformed YAML: line" in err and "column" in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    try:
        main(["train", "--config", str(tmp_path / "nope.yaml")])
    except SystemExit as exc:
        assert exc.code == 2
    _, err = capsys.readouterr()
    assert "nope.yaml: file not found" in err


def test_bad_set_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, err = dry_run(tmp_path, capsys, yaml.safe_dump(BASE), "--set", "optim.rho")
    assert code == 2 and "--set expects key.path=value" in err
    code, err = dry_run(tmp_path, capsys, yaml.safe_dump(BASE), "--set", "optim.rho=-1")
    assert code == 2 and "optim.rho: must be >= 0" in err


def test_unknown_cli_flag_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, err = dry_run(tmp_path, capsys, yaml.safe_dump(BASE), "--rho", "3")
    assert code == 2 and err.startswith("samrl: error: No such option '--rho'")
    assert err.count("\n") == 1


def test_plas_imitator_shares_the_critic_factory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    text = with_change("algo.name", "plas").replace("optim:\n", "optim:\n  networks: [critic]\n")
    code, err = dry_run(tmp_path, capsys, text)
    assert code == 2 and "list both or neither" in err


def test_missing_user_dataset_names_the_expected_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path / "d4rl"))
    code, err = dry_run(tmp_path, capsys, with_change("dataset.name", "d4rl:hopper-medium-v2"))
    assert code == 2 and "dataset.name" in err and str(tmp_path / "d4rl") in err


def test_mujoco_builtin_that_trains_sac_must_be_generated_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """medium-replay is SAC's own training data (not shipped): an explicit, hours-long make."""
    code, err = dry_run(tmp_path, capsys, with_change("dataset.name", "hopper-medium-replay"))
    assert code == 2 and "dataset.name: hopper-medium-replay" in err
    assert "samrl data make hopper-medium-replay --size 500 --seed 0" in err.replace("`", "")
    assert "--policy-steps 100000" in err


# ---------------------------------------------------------------- the run directory and files


def _train(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    code, _, err = run_cli(["train", "--config", str(path), "--quiet", *extra], capsys)
    return code, err


def _one_line(err: str) -> None:
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def test_output_dir_naming_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    code, err = _train(tmp_path, capsys, "--set", f"output.dir={blocker}")
    assert code == 2, err
    _one_line(err)
    assert err.startswith(f"samrl: config error: {tmp_path / 'c.yaml'}: output.dir: {blocker}")
    assert "is a file, not a directory" in err


def test_a_file_in_the_way_of_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # output.dir is a directory, but where the experiment's folder belongs lies a file
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "bad").write_text("in the way")
    code, err = _train(tmp_path, capsys, "--set", f"output.dir={tmp_path / 'out'}")
    assert code == 2, err
    _one_line(err)
    assert f"{tmp_path / 'out' / 'bad'} is a file, not a directory" in err


def test_read_only_output_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    if os.geteuid() == 0:  # root writes through permission bits; /proc refuses even root
        where = Path("/proc/samrl-read-only-test")
    else:
        where = tmp_path / "ro"
        where.mkdir()
        where.chmod(0o555)
    code, err = _train(tmp_path, capsys, "--set", f"output.dir={where}")
    assert code == 2, err
    _one_line(err)
    assert err.startswith("samrl: run error: cannot write ") and str(where) in err


def test_dataset_path_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    folder = tmp_path / "data"
    folder.mkdir()
    code, err = _train(tmp_path, capsys, "--set", f"dataset.name=file:{folder}")
    assert code == 2, err
    _one_line(err)
    assert f"dataset.name: file:{folder}: {folder} is a directory" in err


def test_resume_of_a_run_that_never_existed(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """--resume where no run exists says so in one line, then starts the run."""
    out = f"output.dir={tmp_path / 'runs'}"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    argv = ["train", "--config", str(path), "--quiet", "--set", out, "--resume"]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "bad" / "cql_pendulum-random_sam-rho0.05_s0"
    assert err == f"samrl: nothing to resume: no run in {run_dir}; starting it from scratch\n"
    assert "run completed" in stdout
    code, stdout, err = run_cli(argv, capsys)  # now there is one: nothing said
    assert code == 0 and err == "" and "already completed" in stdout


def test_scientific_notation_is_a_float_in_files_set_and_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from samrl.sweep.grid import parse_grid_flag

    text = yaml.safe_dump(BASE).replace(
        "batch_size: 16", "batch_size: 16\n    critic_learning_rate: 3e-4"
    )
    assert "3e-4" in text
    path = tmp_path / "c.yaml"
    path.write_text(text)
    code, out, err = run_cli(
        ["train", "--config", str(path), "--dry-run", "--set", "optim.rho=5E-2"], capsys
    )
    assert code == 0, err
    resolved = yaml.safe_load(out.split("# run directory")[0])
    assert resolved["algo"]["params"]["critic_learning_rate"] == 3e-4
    assert resolved["optim"]["rho"] == 0.05 and isinstance(resolved["optim"]["rho"], float)
    assert parse_grid_flag("optim.rho=0,1e-2,.5e-1") == ("optim.rho", [0, 0.01, 0.05])


def test_optim_name_base_means_no_sam_and_adam_is_its_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from samrl.config import resolve

    configs = {}
    for name in ("base", "adam"):
        raw = yaml.safe_load(with_change("optim", {"name": name, "base": "sgd"}))
        configs[name] = resolve(raw, source="c.yaml", check_dataset=False)
    assert configs["base"].run_id == "cql_pendulum-random_base_s0"
    # the same training: only the spelling differs
    base, adam = (configs[n].to_dict() for n in ("base", "adam"))
    base["optim"] = {**base["optim"], "name": "adam"}
    base.pop("output"), adam.pop("output")  # the run ids differ: _base_ / _adam_
    assert json.dumps(base, sort_keys=True) == json.dumps(adam, sort_keys=True)
    code, err = dry_run(tmp_path, capsys, with_change("optim", {"name": "bas"}))
    assert code == 2 and "did you mean 'base'" in err


def test_strings_that_look_like_floats_survive_a_written_config(tmp_path: Path) -> None:
    """samrl reads `3e-4` as a float, so every YAML file it writes quotes a string of that
    form (a config hash such as 955991399544e088, a run named 1e5): read back, it is the same
    string, through samrl's reader and through plain yaml.safe_load."""
    from samrl.config import dump_yaml, load_config, load_yaml
    from samrl.rundir import RunDir

    values = {"hash": "955991399544e088", "name": "1e5", "rate": 3e-4, "plain": "critic"}
    text = dump_yaml(values)
    assert load_yaml(text) == values == yaml.safe_load(text)
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml({**BASE, "name": "1e5"}))
    config = load_config(path, check_dataset=False)
    assert config.name == "1e5"
    assert load_yaml(config.to_yaml())["name"] == "1e5"
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config({"samrl": {"config_hash": "955991399544e088"}})
    assert load_yaml(run.config_file.read_text())["samrl"]["config_hash"] == "955991399544e088"
    assert run.saved_hash() == "955991399544e088"


@pytest.mark.parametrize(
    ("algo", "dataset", "corruption", "culprit", "message"),
    [
        (
            "discrete_cql",
            "cartpole-random",
            {"fields": ["actions"]},
            "dataset.corruption.fields",
            "discrete actions, which cannot be corrupted",
        ),
        (
            "discrete_cql",
            "cartpole-random",
            {"fields": ["observations"], "mode": "adversarial"},
            "dataset.corruption.mode",
            "adversarial corruption needs an attacker with continuous actions",
        ),
        (
            "combo",
            "pendulum-random",
            {"fields": ["next_observations"]},
            "dataset.corruption.fields",
            "combo trains its dynamics model on d3rlpy's replay buffer",
        ),
    ],
)
def test_corruption_that_cannot_be_served(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    algo: str,
    dataset: str,
    corruption: dict[str, Any],
    culprit: str,
    message: str,
) -> None:
    config = yaml.safe_load(yaml.safe_dump(BASE))
    config["algo"] = {"name": algo}
    config["dataset"] = {"name": dataset, "size": 500, "corruption": corruption}
    code, err = dry_run(tmp_path, capsys, yaml.safe_dump(config))
    assert code == 2 and err.count("\n") == 1, err
    assert f"{culprit}: " in err and message in err, err


def test_hessian_with_corrupted_observations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(with_change("dataset.corruption", {"fields": ["observations"]}))
    config["analysis"] = {"hessian": {"every_epochs": 1}}
    code, err = dry_run(tmp_path, capsys, yaml.safe_dump(config))
    assert code == 2 and err.count("\n") == 1, err
    assert "analysis.hessian: Hessian batches come from d3rlpy's replay buffer" in err
