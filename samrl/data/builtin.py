"""The built-in datasets: names, cache files, and generation on first use."""

from __future__ import annotations

import os
import pathlib
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np

from samrl.data import actor, classic, mujoco
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


def rolled_out_levels(builtin: Builtin) -> tuple[str, ...]:
    """The behaviour policies a MuJoCo dataset rolls out (none: medium-replay is SAC's own
    training data)."""
    if builtin.level == "medium-expert":
        return ("medium", "expert")
    return () if builtin.level == "medium-replay" else (builtin.level,)


def shipped_policies(builtin: Builtin, policy_steps: int | None) -> dict[str, dict[str, Any]]:
    """The shipped policies this dataset rolls out, by level ({}: it trains SAC here instead).

    Shipped policies are used unless a training length is asked for (`policy_steps`, or
    $SAMRL_POLICY_STEPS) or the dataset is medium-replay, which needs the training itself."""
    levels = rolled_out_levels(builtin)
    if not builtin.is_mujoco or not levels or policy_steps is not None:
        return {}
    if os.environ.get(mujoco.POLICY_STEPS_ENV):
        return {}
    entries = {level: actor.shipped_entry(builtin.family, level) for level in levels}
    return {k: v for k, v in entries.items() if v is not None} if all(entries.values()) else {}


def needs_sac_training(builtin: Builtin, policy_steps: int | None = None) -> bool:
    """Whether generating this dataset trains SAC here (hours) rather than rolling out a
    shipped policy or an untrained one (minutes)."""
    if not builtin.is_mujoco or shipped_policies(builtin, policy_steps):
        return False
    return builtin.level != "random"


def sac_training_needed(builtin: Builtin, size: int, seed: int) -> str:
    """What to tell a user whose dataset needs SAC trained here (`needs_sac_training`)."""
    why = (
        "it is the SAC training's own replay data, and samrl ships the trained policies only"
        if builtin.level == "medium-replay"
        else "samrl ships no behaviour policy for it"
    )
    return (
        f"{builtin.name} (size {size}, seed {seed}) is not generated yet and {why}; run "
        f"`samrl data make {builtin.name} --size {size} --seed {seed} --policy-steps 100000` "
        "first (it trains a SAC behaviour policy: about an hour per 100k steps on one core)"
    )


def cache_path(
    builtin: Builtin, size: int, seed: int, policy_steps: int | None = None
) -> pathlib.Path:
    shipped = shipped_policies(builtin, policy_steps)
    if shipped:
        weights = "".join(entry["sha256"][:8] for entry in shipped.values())
        stem = f"{builtin.name}_n{size}_s{seed}_w{weights}_g{mujoco.GENERATOR_VERSION}"
    elif builtin.is_mujoco:
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
    shipped = shipped_policies(builtin, policy_steps)
    if shipped:
        data, extra = _generate_shipped(builtin, shipped, size, seed, progress, chunk_size)
        metadata.update(extra, generator_version=mujoco.GENERATOR_VERSION)
    elif builtin.is_mujoco:
        if policy_steps is None:
            policy_steps = mujoco.default_policy_steps()
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


def _generate_shipped(
    builtin: Builtin,
    shipped: dict[str, dict[str, Any]],
    size: int,
    seed: int,
    progress: bool,
    chunk_size: int,
) -> tuple[Any, dict[str, Any]]:
    """Rollouts of samrl's shipped behaviour policies (medium-expert: the medium and the expert
    dataset side by side, D4RL's recipe); no training."""
    parts, returns = [], []
    target = cache_path(builtin, size, seed)
    for level in shipped:
        policy = actor.load_shipped(builtin.family, level)
        data, level_returns = _collect(
            builtin,
            policy,
            f"the shipped {level} policy",
            size,
            seed,
            target,
            progress,
            chunk_size,
            stream=level,
        )
        parts.append(data)
        returns.extend(level_returns)
    files = ", ".join(entry["file"] for entry in shipped.values())
    extra = _returns_metadata(np.asarray(returns), f"samrl's shipped SAC policies ({files})")
    extra["behaviour_policies"] = {level: dict(entry) for level, entry in shipped.items()}
    extra["policy_steps"] = actor.shipped_manifest()["policies"][builtin.family]["policy_steps"]
    return concatenate(parts), extra


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
    policy: pathlib.Path | actor.Actor,
    policy_text: str,
    size: int,
    seed: int,
    target: pathlib.Path,
    progress: bool,
    chunk_size: int,
    stream: str | None = None,
) -> tuple[Any, np.ndarray]:
    """`size` transitions of `policy` (an actor, or a SAC checkpoint trained here) in the
    builtin's environment, resumable in chunks beside `target` (the dataset file they
    become). `stream` names the random stream (default: the dataset's level)."""
    if isinstance(policy, pathlib.Path):
        policy = mujoco.actor_of(policy)
    stream = stream or builtin.level
    work_dir = partial_directory(target)
    if stream != builtin.level:  # medium-expert: one folder of chunks per policy
        work_dir = work_dir / stream
    with step_bar(size, f"collecting {builtin.name} with {policy_text}", "step", progress) as bar:
        return mujoco.collect(
            policy,
            builtin.env_id,
            size=size,
            seed=seed,
            stream=stream,
            work_dir=work_dir,
            chunk_size=chunk_size,
            on_steps=bar.update,
        )


def _returns_metadata(returns: np.ndarray, policy: str) -> dict[str, Any]:
    return {
        "behaviour_policy": policy,
        "behaviour_returns": [float(r) for r in returns],
        "behaviour_return_mean": float(np.mean(returns)) if len(returns) else None,
    }
