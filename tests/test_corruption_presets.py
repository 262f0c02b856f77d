"""configs/corruption/: what scripts/corruption_presets.py writes; every preset validates on
files with D4RL's dimensions, and one of each corruption mode trains a few steps."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml
from conftest import run_cli
from helpers.d4rl import DIMS, write_d4rl_file

from samrl.data.remote import d4rl_remote

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "configs" / "corruption").glob("*.yaml"))
# RIQL_config.py, read there: (sigma, quantile, critics) of random / adversarial observations
RIQL_CONFIG = {
    ("random", "halfcheetah"): (0.1, 0.1, 5),
    ("random", "walker2d"): (0.1, 0.25, 5),
    ("random", "hopper"): (0.1, 0.25, 3),
    ("adversarial", "halfcheetah"): (0.1, 0.1, 5),
    ("adversarial", "walker2d"): (1.0, 0.25, 5),
    ("adversarial", "hopper"): (1.0, 0.25, 5),
}


@pytest.fixture(scope="module")
def d4rl_files(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("d4rl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("D4RL_DATASET_DIR", str(directory))
        for env, (obs, act) in DIMS.items():
            remote = d4rl_remote(f"{env}-medium-replay-v2")
            assert remote is not None
            write_d4rl_file(remote.path, obs, act)
    return directory


def test_presets_are_generated() -> None:
    assert len(PRESETS) == 36  # IQL, IQL+SAM, RIQL, RIQL+SAM x 3 tasks x 3 corruptions
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "corruption_presets.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_states_its_numbers_and_validates(
    preset: pathlib.Path,
    d4rl_files: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = preset.read_text()
    assert "RIQL" in text.splitlines()[1]  # the source, cited in the file
    config = yaml.safe_load(text)
    corruption = config["dataset"]["corruption"]
    assert corruption["rate"] == 0.3 and corruption["scale"] == 1.0  # both explicit
    if config["algo"]["name"] == "riql":
        task = config["dataset"]["name"].split(":")[1].split("-")[0]
        params = config["algo"]["params"]
        got = (params["huber_sigma"], params["quantile"], params["n_critics"])
        assert got == RIQL_CONFIG[(corruption["mode"], task)]
    if config["optim"]["name"] == "sam":
        assert config["optim"]["networks"] == ["critic"]
    monkeypatch.setenv("D4RL_DATASET_DIR", str(d4rl_files))
    code, _, err = run_cli(["train", "--config", str(preset), "--dry-run"], capsys)
    assert code == 0, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "stem",
    [
        "riql_sam_hopper_random_mixed",
        "iql_sam_walker2d_random_obs",
        "riql_adam_hopper_adversarial_obs",
    ],
)
def test_preset_trains(
    stem: str,
    d4rl_files: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
) -> None:
    monkeypatch.setenv("D4RL_DATASET_DIR", str(d4rl_files))
    sets = {
        "train.n_steps": 4,
        "train.n_steps_per_epoch": 2,
        "train.eval_episodes": 1,
        "train.device": "cpu",
        "output.dir": str(tmp_path),
        "algo.params.batch_size": 16,
    }
    if "adversarial" in stem:
        sets["dataset.corruption.attacker.n_steps"] = 4
        sets["dataset.corruption.attacker.hidden_units"] = [16]
        sets["dataset.corruption.attack_steps"] = 3
    args = ["train", "--config", str(ROOT / "configs" / "corruption" / f"{stem}.yaml"), "--quiet"]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "run completed (4 steps)" in out
