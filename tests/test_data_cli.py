"""The `samrl data` click group, invoked directly through CliRunner."""

from __future__ import annotations

import pathlib

import pytest
from click.testing import CliRunner

from samrl.cli.data import data_group
from samrl.errors import DatasetError


@pytest.fixture
def cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path / "d4rl"))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "cache"


def test_make_then_list_and_info(cache: pathlib.Path) -> None:
    runner = CliRunner()
    made = runner.invoke(data_group, ["make", "cartpole-medium", "--size", "2000", "--seed", "4"])
    assert made.exit_code == 0, made.output
    summary = made.stdout.strip().splitlines()[-1]  # the progress bar goes to stderr
    expected = cache / "cartpole-medium_n2000_s4_g1.hdf5"
    assert (
        summary.startswith("wrote cartpole-medium: 2000 transitions") and str(expected) in summary
    )
    assert expected.exists()

    again = runner.invoke(data_group, ["make", "cartpole-medium", "--size", "2000", "--seed", "4"])
    assert "already cached" in again.output

    listed = runner.invoke(data_group, ["list"])
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if line.startswith("cartpole-medium "))
    assert "2000/s4" in row and "CartPole-v1" in row
    assert next(
        ln for ln in listed.output.splitlines() if ln.startswith("hopper-medium ")
    ).endswith("-")

    info = runner.invoke(data_group, ["info", "cartpole-medium", "--size", "2000", "--seed", "4"])
    assert info.exit_code == 0, info.output
    for text in (
        "transitions: 2000",
        "references:  min 21.20, max 500.00",
        "returns:",
        "episodes:",
    ):
        assert text in info.output


def test_info_of_ungenerated_builtin_generates_nothing(cache: pathlib.Path) -> None:
    result = CliRunner().invoke(data_group, ["info", "pendulum-expert"])
    assert result.exit_code == 0
    assert (
        "not generated yet" in result.output and "samrl data make pendulum-expert" in result.output
    )
    assert not cache.exists()


def test_errors_are_dataset_errors(cache: pathlib.Path) -> None:
    runner = CliRunner()
    typo = runner.invoke(data_group, ["info", "cartpol-medium"])
    assert isinstance(typo.exception, DatasetError)
    assert "did you mean 'cartpole-medium'" in str(typo.exception)
    missing = runner.invoke(data_group, ["info", "d4rl:hopper-medium-v2"])
    assert isinstance(missing.exception, DatasetError)
    assert "hopper_medium-v2.hdf5" in str(missing.exception)
    not_builtin = runner.invoke(data_group, ["make", "d4rl:hopper-medium-v2"])
    assert isinstance(not_builtin.exception, DatasetError)


@pytest.mark.parametrize("command", [[], ["list"], ["info"], ["make"], ["download"]])
def test_help_has_an_example(command: list[str]) -> None:
    result = CliRunner().invoke(data_group, [*command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "samrl data" in result.output


def test_info_lists_every_cached_size_and_seed(cache: pathlib.Path) -> None:
    runner = CliRunner()
    for size, seed in ((600, 0), (900, 0), (600, 3)):
        made = runner.invoke(
            data_group, ["make", "pendulum-medium", "--size", str(size), "--seed", str(seed)]
        )
        assert made.exit_code == 0, made.output
    info = runner.invoke(data_group, ["info", "pendulum-medium"])
    assert info.exit_code == 0, info.output
    assert "cached:      3 version(s) (size/seed: 600/s0, 600/s3, 900/s0)" in info.output
    assert "not generated" not in info.output
    assert info.output.count("transitions: 600") == 2 and "transitions: 900" in info.output
    one = runner.invoke(data_group, ["info", "pendulum-medium", "--size", "600", "--seed", "3"])
    assert "1 version(s) (size/seed: 600/s3)" in one.output
    none = runner.invoke(data_group, ["info", "pendulum-medium", "--size", "700"])
    assert "not generated yet" in none.output and "--size 700" in none.output


def test_make_random_mujoco_trains_nothing(cache: pathlib.Path) -> None:
    """D4RL's random level is a randomly initialised policy: samrl ships the one its behaviour
    training started from, so nothing is trained or initialised here."""
    made = CliRunner().invoke(data_group, ["make", "hopper-random", "--size", "300"])
    assert made.exit_code == 0, made.output
    assert "collecting hopper-random with the shipped random policy" in made.stderr
    assert "training" not in made.stderr
    assert not (cache / "policies").exists()  # no SAC trained or built here
    info = CliRunner().invoke(data_group, ["info", "hopper-random"])
    assert "samrl's shipped SAC policies (hopper_random.npz)" in info.output
    assert "300/s0" in info.output


def test_config_accepts_ungenerated_mujoco_only_where_nothing_is_trained(
    cache: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """Datasets rolled out from shipped policies are generated on first use (minutes);
    medium-replay, which trains SAC here (hours), needs an explicit `samrl data make`."""
    import yaml

    from samrl.config import load_config
    from samrl.errors import ConfigError

    def config(name: str) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            yaml.safe_dump(
                {"algo": {"name": "bc"}, "dataset": {"name": name, "size": 300}, "name": "x"}
            )
        )
        return str(path)

    load_config(config("hopper-random"))
    load_config(config("hopper-medium"))
    with pytest.raises(ConfigError, match="samrl data make hopper-medium-replay --size 300"):
        load_config(config("hopper-medium-replay"))


def test_info_return_statistics_match_the_hdf5(cache: pathlib.Path) -> None:
    """Episodes, return spread and normalized scores printed by `data info`, recomputed from
    the HDF5 file's own arrays with h5py and a plain loop over steps."""
    import json
    import re

    import h5py
    import numpy as np

    from samrl.data.references import CLASSIC_REFERENCES

    runner = CliRunner()
    made = runner.invoke(data_group, ["make", "pendulum-replay", "--size", "700", "--seed", "2"])
    assert made.exit_code == 0, made.output
    info = runner.invoke(data_group, ["info", "pendulum-replay", "--size", "700", "--seed", "2"])
    assert info.exit_code == 0, info.output

    with h5py.File(cache / "pendulum-replay_n700_s2_g1.hdf5", "r") as f:
        rewards = f["rewards"][()]
        ends = np.logical_or(f["terminals"][()], f["timeouts"][()])
        metadata = json.loads(f["metadata"].attrs["samrl_json"])
    returns, total = [], 0.0
    for reward, end in zip(rewards, ends, strict=True):
        total += float(reward)
        if end:
            returns.append(total)
            total = 0.0
    if not ends[-1]:
        returns.append(total)
    returns_array = np.array(returns)
    low, high = CLASSIC_REFERENCES["pendulum"]

    def numbers(label: str) -> list[float]:
        line = next(ln for ln in info.output.splitlines() if ln.startswith(label))
        return [float(x) for x in re.findall(r"-?\d+\.\d+", line)]

    assert f"episodes:    {len(returns)} " in info.output
    expected = [returns_array.mean(), returns_array.std(), returns_array.min(), returns_array.max()]
    assert numbers("returns:") == pytest.approx(expected, abs=0.006)
    scaled = [100 * (v - low) / (high - low) for v in expected]
    scaled[1] = 100 * expected[1] / (high - low)
    assert numbers("normalized:") == pytest.approx(scaled, abs=0.006)
    behaviour = metadata["behaviour_return_mean"]
    assert numbers("behaviour normalized:") == pytest.approx(
        [100 * (behaviour - low) / (high - low)], abs=0.006
    )
