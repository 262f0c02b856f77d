"""MuJoCo datasets: tiny SAC behaviour policies end to end, resumable chunked collection."""

from __future__ import annotations

import json
import pathlib

import d3rlpy
import gymnasium as gym
import numpy as np
import pytest

from samrl.data import load_dataset, mujoco
from samrl.data.builtin import BUILTINS, cache_path, ensure_builtin
from samrl.data.hdf5 import read_d4rl_hdf5


@pytest.fixture
def untrained_policy(tmp_path: pathlib.Path) -> pathlib.Path:
    sac = d3rlpy.algos.SACConfig().create(device="cpu:0")
    sac.build_with_env(gym.make("Hopper-v5"))
    path = tmp_path / "policy.d3"
    sac.save(str(path))
    return path


def test_tiny_hopper_generation_end_to_end(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SAMRL_POLICY_STEPS", "300")
    sizes = {}
    for level in ("random", "medium", "medium-replay", "expert", "medium-expert"):
        # a 300-step training may give medium-replay a single episode: nothing to hold out
        fraction = 0.0 if level == "medium-replay" else 0.2
        ds = load_dataset(f"hopper-{level}", size=400, seed=1, test_fraction=fraction)
        assert ds.info.env_id == "Hopper-v5" and ds.info.ref_max_return == 3234.3
        trained = 0 if level == "random" else 300  # random: an untrained policy
        assert ds.metadata["env_id"] == "Hopper-v5" and ds.metadata["policy_steps"] == trained
        assert ds.metadata["generator_version"] == mujoco.GENERATOR_VERSION
        returns = ds.metadata["behaviour_returns"]  # complete episodes only
        assert ds.metadata["behaviour_return_mean"] == (np.mean(returns) if returns else None)
        assert ds.train.dataset_info.observation_signature.shape[0] == (11,)
        # the file's steps (d3rlpy keeps no transition of a 1-step episode cut by a timeout)
        data, _ = read_d4rl_hdf5(cache_path(BUILTINS[f"hopper-{level}"], 400, 1))
        sizes[level] = len(data)
    assert sizes["medium"] == sizes["expert"] == sizes["random"] == 400
    assert sizes["medium-expert"] == 800  # D4RL: medium + expert side by side
    assert 0 < sizes["medium-replay"] <= 300
    policy_dir = mujoco.policy_directory(tmp_path, "hopper", 1, 300)
    manifest = json.loads((policy_dir / "policies.json").read_text())
    for level in ("random", "medium", "expert"):
        assert (policy_dir / f"{level}.d3").is_file()
        d3rlpy.load_learnable(str(policy_dir / f"{level}.d3"), device="cpu:0")
    assert manifest["medium"]["step"] <= manifest["expert"]["step"]
    assert not list(tmp_path.glob("*.partial"))  # chunks removed once the file exists


def test_collection_resumes_from_written_chunks(
    tmp_path: pathlib.Path, untrained_policy: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs = {"size": 250, "seed": 5, "stream": "medium", "chunk_size": 100}
    actor = mujoco.actor_of(untrained_policy)
    full, full_returns = mujoco.collect(actor, "Hopper-v5", work_dir=tmp_path / "full", **kwargs)
    assert len(full) == 250
    assert not np.any(full.terminals & full.timeouts)

    real_chunk = mujoco._collect_chunk
    calls: list[int] = []

    def dying_chunk(*args: object, **kw: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while collecting the second chunk
        return real_chunk(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mujoco, "_collect_chunk", dying_chunk)
    work = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        mujoco.collect(actor, "Hopper-v5", work_dir=work, **kwargs)
    assert json.loads((work / "state.json").read_text())["chunks_done"] == 1

    calls.clear()

    def counting_chunk(*args: object, **kw: object) -> object:
        calls.append(1)
        return real_chunk(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mujoco, "_collect_chunk", counting_chunk)
    resumed, resumed_returns = mujoco.collect(actor, "Hopper-v5", work_dir=work, **kwargs)
    assert len(calls) == 2  # chunks 1 and 2; chunk 0 came from disk
    for key in ("observations", "actions", "rewards", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(resumed, key), getattr(full, key))
    np.testing.assert_array_equal(resumed_returns, full_returns)


def test_partial_collection_is_picked_up_by_ensure_builtin(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path))
    builtin = BUILTINS["hopper-expert"]
    ensure_builtin(builtin, size=150, seed=0, policy_steps=300, chunk_size=100)
    reference = sorted(tmp_path.glob("hopper-expert_*.hdf5"))
    assert len(reference) == 1
    reference[0].unlink()

    real_chunk = mujoco._collect_chunk

    def die_on_second(*args: object, **kw: object) -> object:
        if list(args[3])[-1] == 1:  # seed words end with the chunk index
            raise KeyboardInterrupt
        return real_chunk(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mujoco, "_collect_chunk", die_on_second)
    with pytest.raises(KeyboardInterrupt):
        ensure_builtin(builtin, size=150, seed=0, policy_steps=300, chunk_size=100)
    assert len(list(tmp_path.glob("*.partial/chunk_*.npz"))) == 1
    assert not reference[0].exists()  # never a half-written dataset
    monkeypatch.setattr(mujoco, "_collect_chunk", real_chunk)
    path = ensure_builtin(builtin, size=150, seed=0, policy_steps=300, chunk_size=100)
    assert path == reference[0] and path.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_behaviour_training_killed_with_sigkill_resumes_to_the_same_bytes(
    tmp_path: pathlib.Path,
) -> None:
    """A real kill -9 after the second of three segments (updates have run, so optimizer
    state and RNG streams matter); the resumed training ends with the bytes of one that was
    never interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    steps = 600  # 3 segments of 200 steps; SAC updates start once 256 steps are buffered
    script = (
        "import pathlib, sys\n"
        "from samrl.data import mujoco\n"
        "mujoco.train_behaviour_policies('hopper', 'Hopper-v5', seed=3, "
        f"policy_steps={steps}, cache=pathlib.Path(sys.argv[1]))\n"
    )
    killed = tmp_path / "killed"
    resume = mujoco.policy_directory(killed, "hopper", 3, steps) / "resume" / "resume.json"
    child = subprocess.Popen([sys.executable, "-c", script, str(killed)])
    deadline = time.monotonic() + 300
    while not (resume.exists() and json.loads(resume.read_text())["segments_done"] == 2):
        assert child.poll() is None, "the training ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert json.loads(resume.read_text())["grad_step"] > 0
    assert not (resume.parent.parent / "policies.json").exists()

    resumed = mujoco.train_behaviour_policies(
        "hopper", "Hopper-v5", seed=3, policy_steps=steps, cache=killed
    )
    whole = mujoco.train_behaviour_policies(
        "hopper", "Hopper-v5", seed=3, policy_steps=steps, cache=tmp_path / "whole"
    )
    assert resumed.manifest == whole.manifest
    assert [c["step"] for c in whole.manifest["checkpoints"]] == [0, 200, 400, 600]
    for name in ("expert.d3", "medium.d3", "training_log.hdf5", "checkpoints/sac_600.d3"):
        assert (resumed.directory / name).read_bytes() == (whole.directory / name).read_bytes()
    assert not (resumed.directory / "resume").exists()  # removed once training finished
