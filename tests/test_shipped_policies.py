"""The behaviour policies samrl ships (samrl/data/policies/): files that are what the manifest
says, D4RL's levels, and MuJoCo datasets rolled out from them in seconds with pinned bytes."""

from __future__ import annotations

import hashlib
import pathlib

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_cli

from samrl.cli.data import data_group
from samrl.data import actor, mujoco
from samrl.data.builtin import BUILTINS, cache_path, needs_sac_training

SHIPPED_FAMILIES = ("hopper", "halfcheetah")
#: sha256 of `samrl data make hopper-medium --size 3000 --seed 0` (the shipped medium policy).
HOPPER_MEDIUM_3000 = "ef6da890ad40e35f89ba1226068a04f7c401dddaa7241735294fb5e27011aca9"


@pytest.mark.parametrize("family", SHIPPED_FAMILIES)
def test_shipped_files_are_the_manifests(family: str) -> None:
    entries = actor.shipped_manifest()["policies"][family]
    env = gym.make(entries["env_id"])
    for level in ("random", "medium", "expert"):
        entry = entries[level]
        data = (actor.SHIPPED_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        policy = actor.load_shipped(family, level)
        observation, _ = env.reset(seed=0)
        action = policy.sample(observation[None], np.random.default_rng(0))
        assert action.shape == (1, *env.action_space.shape)
    # D4RL's levels: random untrained; medium the checkpoint up to the expert's closest to a
    # third of its return
    curve = dict(map(tuple, entries["learning_curve"]))
    assert entries["random"]["checkpoint_step"] == 0
    assert entries["medium"]["checkpoint_step"] <= entries["expert"]["checkpoint_step"]
    assert entries["expert"]["eval_return"] == max(r for s, r in curve.items() if s > 0)
    assert not needs_sac_training(BUILTINS[f"{family}-medium"])


def test_data_make_rolls_out_the_shipped_policy_to_pinned_bytes(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(mujoco.POLICY_STEPS_ENV, raising=False)
    made = CliRunner().invoke(data_group, ["make", "hopper-medium", "--size", "3000"])
    assert made.exit_code == 0, made.output
    assert "collecting hopper-medium with the shipped medium policy" in made.stderr
    assert "training" not in made.stderr
    path = cache_path(BUILTINS["hopper-medium"], 3000, 0)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == HOPPER_MEDIUM_3000
    assert not (tmp_path / "policies").exists()  # nothing trained


def test_medium_replay_says_in_one_line_that_it_needs_training(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(mujoco.POLICY_STEPS_ENV, raising=False)
    code, out, err = run_cli(["data", "make", "hopper-medium-replay", "--size", "3000"], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "SAC training's own replay data" in err and "--policy-steps 100000" in err
    assert not list(tmp_path.iterdir())  # nothing generated, nothing trained
