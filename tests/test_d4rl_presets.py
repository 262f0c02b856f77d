"""configs/d4rl/: every preset validates and trains a few steps on generated files with D4RL's
dimensions; the files are what scripts/d4rl_presets.py writes; the sweep files expand."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from conftest import run_cli
from helpers.d4rl import DIMS, write_d4rl_file

from samrl.data.remote import d4rl_remote

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "configs" / "d4rl").glob("*.yaml"))
SWEEPS = sorted((ROOT / "configs" / "sweeps" / "d4rl").glob("*.yaml"))


# D4RL -v2 observation / action sizes (also those of the gymnasium v5 envs used to evaluate).
@pytest.fixture(scope="module")
def d4rl_files(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Every dataset the presets name, generated where d4rl would keep it."""
    directory = tmp_path_factory.mktemp("d4rl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("D4RL_DATASET_DIR", str(directory))
        for env, (obs, act) in DIMS.items():
            for level in ("medium", "medium-replay", "medium-expert"):
                remote = d4rl_remote(f"{env}-{level}-v2")
                assert remote is not None
                write_d4rl_file(remote.path, obs, act)
    return directory


def test_presets_are_generated() -> None:
    assert len(PRESETS) == 72 and len(SWEEPS) == 8  # 4 algos x 9 datasets x 2 variants
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "d4rl_presets.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.stem)
def test_sweep_files_expand(
    sweep: pathlib.Path,
    d4rl_files: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
) -> None:
    monkeypatch.setenv("D4RL_DATASET_DIR", str(d4rl_files))
    args = ["sweep", str(sweep), "--dry-run", "--out", str(tmp_path)]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert ": 45 runs (45 new)" in out, out


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_validates_and_trains(
    preset: pathlib.Path,
    d4rl_files: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: pathlib.Path,
) -> None:
    monkeypatch.setenv("D4RL_DATASET_DIR", str(d4rl_files))
    code, out, err = run_cli(["train", "--config", str(preset), "--dry-run"], capsys)
    assert code == 0, err
    # Evaluation rollouts in the v5 env for one variant of each algorithm on hopper (the
    # dimensions must match); the rest train without them to stay fast.
    evaluate = "hopper-medium-v2" in preset.stem and "_sam_" in preset.stem
    sets = {
        "train.n_steps": 4,
        "train.n_steps_per_epoch": 2,
        "train.eval_episodes": 1 if evaluate else 0,
        "train.device": "cpu",
        "output.dir": str(tmp_path),
    }
    args = ["train", "--config", str(preset), "--quiet"]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "run completed (4 steps)" in out
    if evaluate:
        eval_csv = next(tmp_path.glob("*/*/eval.csv")).read_text().splitlines()
        assert len(eval_csv) == 3
