"""Behaviour-policy actors as plain arrays: the same outputs as d3rlpy's SAC policy, files
that load without unpickling and are refused when their sha256 differs, and MuJoCo datasets
rolled out from shipped policies without any SAC training."""

from __future__ import annotations

import hashlib
import json
import pathlib

import d3rlpy
import gymnasium as gym
import numpy as np
import pytest
import torch

from samrl.data import actor, mujoco
from samrl.data.builtin import BUILTINS, cache_path, ensure_builtin, needs_sac_training
from samrl.data.hdf5 import read_d4rl_hdf5


@pytest.fixture
def sac() -> object:
    d3rlpy.seed(4)
    algo = d3rlpy.algos.SACConfig().create(device="cpu:0")
    algo.build_with_env(gym.make("Hopper-v5"))
    return algo


def test_actor_heads_are_d3rlpy_policy_outputs(sac: object) -> None:
    observations = np.random.default_rng(0).normal(size=(32, 11)).astype(np.float32)
    arrays = actor.Actor.from_algo(sac)
    mean, logstd = arrays.heads(observations)
    with torch.no_grad():
        out = sac.impl.policy(torch.from_numpy(observations))  # type: ignore[attr-defined]
    np.testing.assert_allclose(mean, out.mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logstd, out.logstd.numpy(), rtol=1e-5, atol=1e-6)
    # d3rlpy's greedy action is the squashed mean
    np.testing.assert_allclose(np.tanh(mean), sac.predict(observations), atol=1e-6)  # type: ignore[attr-defined]


def test_sampled_actions_are_the_squashed_gaussian_of_the_heads(sac: object) -> None:
    arrays = actor.Actor.from_algo(sac)
    observations = np.random.default_rng(1).normal(size=(5, 11))
    actions = arrays.sample(observations, np.random.default_rng(7))
    mean, logstd = arrays.heads(observations)
    noise = np.random.default_rng(7).standard_normal(mean.shape)
    np.testing.assert_array_equal(
        actions, np.tanh(mean + np.exp(logstd) * noise).astype(np.float32)
    )
    assert actions.dtype == np.float32 and np.all(np.abs(actions) <= 1)


def test_actor_files_round_trip_and_refuse_other_bytes(sac: object, tmp_path: pathlib.Path) -> None:
    original = actor.Actor.from_algo(sac)
    path = tmp_path / "medium.npz"
    sha256 = actor.save_actor(original, path)
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = actor.load_actor(path, sha256)
    assert loaded.digest() == original.digest()
    with np.load(path, allow_pickle=False) as raw:  # plain arrays, nothing pickled
        assert sorted(raw.files) == sorted(original.arrays())
    with pytest.raises(actor.ShippedPolicyError, match="sha256 differs"):
        actor.load_actor(path, "0" * 64)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(actor.ShippedPolicyError, match="not a samrl actor file"):
        actor.load_actor(tmp_path / "junk.npz")


@pytest.fixture
def shipped_untrained(
    sac: object, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> pathlib.Path:
    """A policy directory laid out as samrl's shipped one, holding an untrained actor for each
    level of hopper (the shipped files themselves are tested in test_shipped_policies)."""
    folder = tmp_path / "policies"
    folder.mkdir()
    entries = {}
    for level in ("random", "medium", "expert"):
        path = folder / f"hopper_{level}.npz"
        sha = actor.save_actor(actor.Actor.from_algo(sac), path)
        entries[level] = {"file": path.name, "sha256": sha, "checkpoint_step": 0}
    manifest = {"policies": {"hopper": {**entries, "seed": 0, "policy_steps": 123}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(actor, "SHIPPED_DIR", folder)
    monkeypatch.setattr(actor, "MANIFEST", folder / "manifest.json")
    monkeypatch.delenv(mujoco.POLICY_STEPS_ENV, raising=False)
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path / "cache"))
    return folder


def test_shipped_policies_make_datasets_without_training(shipped_untrained: pathlib.Path) -> None:
    medium = BUILTINS["hopper-medium"]
    assert not needs_sac_training(medium)
    assert needs_sac_training(BUILTINS["hopper-medium-replay"])  # the training log itself
    assert needs_sac_training(medium, policy_steps=300)  # a length asked for: trained here
    path = ensure_builtin(medium, size=300, seed=2)
    assert path == cache_path(medium, 300, 2) and "_w" in path.name
    data, metadata = read_d4rl_hdf5(path)
    assert len(data) == 300 and metadata["policy_steps"] == 123
    assert metadata["behaviour_policies"]["medium"]["file"] == "hopper_medium.npz"
    assert not (path.parent / "policies").exists()  # no SAC was trained
    first = path.read_bytes()
    path.unlink()
    assert ensure_builtin(medium, size=300, seed=2).read_bytes() == first  # same bytes again
    both, _ = read_d4rl_hdf5(ensure_builtin(BUILTINS["hopper-medium-expert"], size=300, seed=2))
    np.testing.assert_array_equal(both.observations[:300], data.observations)  # D4RL's recipe


def test_a_damaged_shipped_file_is_refused(shipped_untrained: pathlib.Path) -> None:
    target = shipped_untrained / "hopper_medium.npz"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one weight's byte flipped
    target.write_bytes(bytes(raw))
    with pytest.raises(actor.ShippedPolicyError, match=r"hopper_medium\.npz: sha256 differs"):
        ensure_builtin(BUILTINS["hopper-medium"], size=100, seed=0)
