"""The built-in datasets: names, cache files, and generation on first use."""

from __future__ import annotations

import os
import pathlib
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np

from samrl.data import classic, mujoco
from samrl.data.hdf5 import read_d4rl_hdf5, write_d4rl_hdf5
from samrl.data.references import CLASSIC_REFERENCES, D4RL_REFERENCES, MUJOCO_ENV_IDS
from samrl.data.transitions import concatenate
from samrl.progress import step_bar

CACHE_ENV = "SAMRL_DATA_DIR"
_POLICY_LEVELS = ("random", "medium", "expert")
MUJOCO_LEVELS = ("random", "medium", "medium-replay", "expert", "medium-expert")
MUJOCO_FAMILIES = ("hopper", "halfcheetah", "walker2d")


@dataclass(frozen=True)
class Builtin:
    name: str  # e.g. "hopper-medium-replay"
    family: str  # "pendulum", "cartpole", "hopper", ...
    level: str
    env_id: str
    discrete: bool
    default_size: int
    ref_min_return: float
    ref_max_return: float

    @property
    def is_mujoco(self) -> bool:
        return self.family in MUJOCO_FAMILIES


def _registry() -> dict[str, Builtin]:
    out: dict[str, Builtin] = {}
    for family, task in classic.CLASSIC_TASKS.items():
        lo, hi = CLASSIC_REFERENCES[family]
        for level in classic.CLASSIC_LEVELS:
            name = f"{family}-{level}"
            out[name] = Builtin(name, family, level, task.env_id, task.discrete, 100_000, lo, hi)
    for family in MUJOCO_FAMILIES:
        lo, hi = D4RL_REFERENCES[family]
        for level in MUJOCO_LEVELS:
            name = f"{family}-{level}"
            out[name] = Builtin(
                name, family, level, MUJOCO_ENV_IDS[family], False, 1_000_000, lo, hi
            )
    return out


BUILTINS: dict[str, Builtin] = _registry()


def dataset_cache_dir() -> pathlib.Path:
    """$SAMRL_DATA_DIR or ~/.cache/samrl/datasets."""
    env = os.environ.get(CACHE_ENV)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache/samrl/datasets"


def cache_path(
    builtin: Builtin, size: int, seed: int, policy_steps: int | None = None
) -> pathlib.Path:
    if builtin.is_mujoco:
        steps = policy_steps if policy_steps is not None else mujoco.default_policy_steps()
        if builtin.level == "random":
            steps = 0  # a randomly initialised policy: no training, so no training length
        stem = f"{builtin.name}_n{size}_s{seed}_p{steps}_g{mujoco.GENERATOR_VERSION}"
    else:
        stem = f"{builtin.name}_n{size}_s{seed}_g{classic.GENERATOR_VERSION}"
    return dataset_cache_dir() / f"{stem}.hdf5"


def cached_files(builtin: Builtin) -> list[pathlib.Path]:
    """Cached files of this dataset, any size/seed ('hopper-medium_' excludes
    'hopper-medium-replay_')."""
    return sorted(dataset_cache_dir().glob(f"{builtin.name}_n*.hdf5"))


def ensure_builtin(
    builtin: Builtin,
    *,
    size: int | None = None,
    seed: int = 0,
    progress: bool = False,
    policy_steps: int | None = None,
    chunk_size: int = mujoco.DEFAULT_CHUNK_SIZE,
) -> pathlib.Path:
    """The cache file of this dataset, generating it first if needed."""
    size = builtin.default_size if size is None else size
    if builtin.is_mujoco and policy_steps is None:
        policy_steps = mujoco.default_policy_steps()
    path = cache_path(builtin, size, seed, policy_steps)
    if path.exists():
        return path
    metadata: dict[str, Any] = {
        "name": builtin.name,
        "env_id": builtin.env_id,
        "discrete": builtin.discrete,
        "size": size,
        "seed": seed,
        "ref_min_return": builtin.ref_min_return,
        "ref_max_return": builtin.ref_max_return,
    }
    if builtin.is_mujoco:
        assert policy_steps is not None
        data, extra = _generate_mujoco(builtin, size, seed, policy_steps, progress, chunk_size)
        trained = 0 if builtin.level == "random" else policy_steps
        metadata.update(extra, generator_version=mujoco.GENERATOR_VERSION, policy_steps=trained)
    else:
        with step_bar(size, builtin.name, "step", progress) as bar:
            data, extra = classic.generate_classic(
                builtin.family, builtin.level, size, seed, on_steps=bar.update
            )
        metadata.update(extra, generator_version=classic.GENERATOR_VERSION)
        if builtin.discrete:
            metadata["action_size"] = 2
    write_d4rl_hdf5(path, data, metadata)
    # Only now are the resumable chunks of a MuJoCo collection no longer needed.
    shutil.rmtree(partial_directory(path), ignore_errors=True)
    return path


def partial_directory(path: pathlib.Path) -> pathlib.Path:
    """Where an unfinished collection for the cache file `path` keeps its chunks."""
    return path.with_name(f"{path.stem}.partial")


def _generate_mujoco(
    builtin: Builtin, size: int, seed: int, policy_steps: int, progress: bool, chunk_size: int
) -> tuple[Any, dict[str, Any]]:
    cache = dataset_cache_dir()
    if builtin.level == "medium-expert":
        # D4RL's recipe: the medium and the expert dataset side by side (2 x size steps).
        parts, returns = [], []
        for level in ("medium", "expert"):
            part_path = ensure_builtin(
                BUILTINS[f"{builtin.family}-{level}"],
                size=size,
                seed=seed,
                progress=progress,
                policy_steps=policy_steps,
                chunk_size=chunk_size,
            )
            data, meta = read_d4rl_hdf5(part_path)
            parts.append(data)
            returns.extend(meta["behaviour_returns"])
        extra = _returns_metadata(np.asarray(returns), "SAC medium + expert policies")
        extra["policy_directory"] = str(
            mujoco.policy_directory(cache, builtin.family, seed, policy_steps)
        )
        return concatenate(parts), extra

    if builtin.level == "random":
        return _collect_random(builtin, size, seed, progress, chunk_size, cache)
    policies = mujoco.train_behaviour_policies(
        builtin.family,
        builtin.env_id,
        seed=seed,
        policy_steps=policy_steps,
        cache=cache,
        progress=progress,
    )
    extra_policy = {
        "policy_directory": str(policies.directory),
        "policy_eval_returns": {k: policies.manifest[k]["return"] for k in _POLICY_LEVELS},
        "policy_checkpoint_steps": {k: policies.manifest[k]["step"] for k in _POLICY_LEVELS},
    }
    if builtin.level == "medium-replay":
        data, returns = mujoco.medium_replay(policies, size)
        extra = _returns_metadata(returns, "SAC training replay up to the medium checkpoint")
        return data, {**extra, **extra_policy}
    data, returns = _collect(
        builtin,
        policies.path(builtin.level),
        f"the {builtin.level} policy",
        size,
        seed,
        cache_path(builtin, size, seed, policy_steps),
        progress,
        chunk_size,
    )
    policy_file = policies.path(builtin.level).name
    extra = _returns_metadata(returns, f"SAC {builtin.level} policy ({policy_file})")
    return data, {**extra, **extra_policy}


def _collect_random(
    builtin: Builtin, size: int, seed: int, progress: bool, chunk_size: int, cache: pathlib.Path
) -> tuple[Any, dict[str, Any]]:
    """D4RL's random level: rollouts of a randomly initialised policy; nothing is trained."""
    policy = mujoco.random_policy(cache, builtin.family, builtin.env_id, seed)
    data, returns = _collect(
        builtin,
        policy,
        "a randomly initialised policy",
        size,
        seed,
        cache_path(builtin, size, seed),
        progress,
        chunk_size,
    )
    extra = _returns_metadata(returns, "randomly initialised SAC policy (no training)")
    return data, {**extra, "policy_path": str(policy)}


def _collect(
    builtin: Builtin,
    policy: pathlib.Path,
    policy_text: str,
    size: int,
    seed: int,
    target: pathlib.Path,
    progress: bool,
    chunk_size: int,
) -> tuple[Any, np.ndarray]:
    """`size` transitions of `policy` in the builtin's environment, resumable in chunks beside
    `target` (the dataset file they become)."""
    with step_bar(size, f"collecting {builtin.name} with {policy_text}", "step", progress) as bar:
        return mujoco.collect(
            policy,
            builtin.env_id,
            size=size,
            seed=seed,
            stream=builtin.level,
            work_dir=partial_directory(target),
            chunk_size=chunk_size,
            on_steps=bar.update,
        )


def _returns_metadata(returns: np.ndarray, policy: str) -> dict[str, Any]:
    return {
        "behaviour_policy": policy,
        "behaviour_returns": [float(r) for r in returns],
        "behaviour_return_mean": float(np.mean(returns)) if len(returns) else None,
    }
