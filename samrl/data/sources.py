"""Dataset specs: what a spec names (describe) and how its transitions are read (read)."""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

import h5py
import numpy as np

from samrl.data.builtin import BUILTINS
from samrl.data.hdf5 import read_d4rl_hdf5, read_metadata
from samrl.data.info import DatasetInfo
from samrl.data.references import D4RL_REFERENCES, MUJOCO_ENV_IDS
from samrl.data.transitions import Transitions, concatenate, validated
from samrl.errors import DatasetError, unknown_name

PREFIXES = ("d4rl", "minari", "file")
D4RL_DIR_ENV = "D4RL_DATASET_DIR"
MINARI_DIR_ENV = "MINARI_DATASETS_PATH"
_D4RL_OBS_DIMS = {"ant": 111}  # where D4RL's observations differ from the v5 env's


def split_spec(spec: str) -> tuple[str, str]:
    """('builtin', name) or (prefix, rest); unknown names and prefixes raise."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in PREFIXES:
        if not rest:
            raise DatasetError(f"dataset '{spec}': nothing after '{prefix}:'")
        return prefix, rest
    if spec in BUILTINS:
        return "builtin", spec
    if sep and len(prefix) > 1:  # 'c:\\x' style paths are not prefixes, but 'd4lr:x' is a typo
        raise DatasetError(unknown_name("dataset prefix", prefix, PREFIXES))
    raise DatasetError(
        unknown_name("dataset", spec, BUILTINS)
        + " (or a user dataset: d4rl:<name>, minari:<id>, file:<path>)"
    )


# ---- D4RL files -------------------------------------------------------------------------------


def d4rl_dir() -> pathlib.Path:
    env = os.environ.get(D4RL_DIR_ENV)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".d4rl/datasets"


def d4rl_candidate_paths(name: str) -> list[pathlib.Path]:
    """D4RL names its files after the download URL: 'hopper-medium-replay-v2' is stored as
    'hopper_medium_replay-v2.hdf5' (underscores inside, dash before the version); v0 files
    have no version ('hopper_medium.hdf5'). The name as written is tried too."""
    stem = name.removesuffix(".hdf5")
    match = re.fullmatch(r"(.+)-(v\d+)", stem)
    names = []
    if match:
        body, version = match.groups()
        names.append(f"{body.replace('-', '_')}-{version}.hdf5")
        if version == "v0":
            names.append(f"{body.replace('-', '_')}.hdf5")
    names.append(f"{stem}.hdf5")
    directory = d4rl_dir()
    return [directory / n for n in dict.fromkeys(names)]


def _d4rl_family(name: str) -> str:
    return name.split("-", 1)[0].split("_", 1)[0].lower()


def _describe_d4rl(spec: str, name: str) -> DatasetInfo:
    family = _d4rl_family(name)
    env_id = MUJOCO_ENV_IDS.get(family)
    notes: list[str] = []
    if env_id is not None:
        old = {
            "hopper": "Hopper",
            "halfcheetah": "HalfCheetah",
            "walker2d": "Walker2d",
            "ant": "Ant",
        }[family]
        notes.append(f"D4RL data were collected in {old}-v2 (mujoco-py); evaluation uses {env_id}")
        if family in _D4RL_OBS_DIMS:
            notes.append(
                f"D4RL {family} observations have {_D4RL_OBS_DIMS[family]} dims, "
                f"{env_id}'s have 105: policies trained on them cannot run there"
            )
    else:
        notes.append(f"no gymnasium environment known for D4RL '{name}': no evaluation rollouts")
    ref = D4RL_REFERENCES.get(family)
    return DatasetInfo(
        spec, "d4rl", False, env_id, ref[0] if ref else None, ref[1] if ref else None, tuple(notes)
    )


def resolve_d4rl(name: str) -> pathlib.Path:
    candidates = d4rl_candidate_paths(name)
    for path in candidates:
        if path.is_file():
            return path
    raise DatasetError(
        f"d4rl:{name}: no file at {' or '.join(map(str, candidates))}; download D4RL's "
        f"{candidates[0].name} (e.g. from http://rail.eecs.berkeley.edu/datasets/offline_rl/"
        f"gym_mujoco_v2/) on a machine with internet access and put it in ${D4RL_DIR_ENV} "
        "(default ~/.d4rl/datasets)"
    )


# ---- Minari datasets --------------------------------------------------------------------------


def minari_root() -> pathlib.Path:
    env = os.environ.get(MINARI_DIR_ENV)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".minari/datasets"


def minari_paths(dataset_id: str) -> tuple[pathlib.Path, pathlib.Path]:
    """(main_data.hdf5, metadata.json) of a Minari dataset id such as mujoco/hopper/medium-v0."""
    base = minari_root() / dataset_id
    return base / "data" / "main_data.hdf5", base / "metadata.json"


def _minari_metadata(dataset_id: str) -> dict[str, Any]:
    data_path, meta_path = minari_paths(dataset_id)
    if not data_path.is_file():
        raise DatasetError(
            f"minari:{dataset_id}: no file at {data_path}; run `minari download {dataset_id}` "
            f"on a machine with internet access and copy it into ${MINARI_DIR_ENV} "
            "(default ~/.minari/datasets)"
        )
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{meta_path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise DatasetError(f"{meta_path}: expected a JSON object")
    return meta


def _json_field(meta: dict[str, Any], key: str) -> dict[str, Any]:
    """Minari stores env_spec and spaces as JSON strings inside metadata.json."""
    value = meta.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _describe_minari(spec: str, dataset_id: str) -> DatasetInfo:
    meta = _minari_metadata(dataset_id)
    action_space = _json_field(meta, "action_space")
    env_id = _json_field(meta, "env_spec").get("id")
    lo, hi = meta.get("ref_min_score"), meta.get("ref_max_score")
    notes = (
        () if env_id else (f"metadata.json of {dataset_id} names no env: no evaluation rollouts",)
    )
    return DatasetInfo(
        spec,
        "minari",
        action_space.get("type") == "Discrete",
        env_id,
        float(lo) if lo is not None else None,
        float(hi) if hi is not None else None,
        notes,
    )


def read_minari(
    dataset_id: str, *, discrete: bool | None
) -> tuple[Transitions, dict[str, Any], pathlib.Path]:
    meta = _minari_metadata(dataset_id)
    path, _ = minari_paths(dataset_id)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(
            f"{path}: not a readable HDF5 file ({str(exc).splitlines()[0]})"
        ) from exc
    parts = []
    with f:
        names = sorted((k for k in f if re.fullmatch(r"episode_\d+", k)), key=lambda k: int(k[8:]))
        if not names:
            raise DatasetError(f"{path}: no 'episode_<n>' groups (not a Minari dataset?)")
        for name in names:
            parts.append(_minari_episode(f[name], f"{path}:{name}", discrete))
    meta = {**meta, "minari_episodes": len(parts)}
    return concatenate(parts), meta, path


def _minari_episode(group: Any, source: str, discrete: bool | None) -> Transitions:
    keys = ("observations", "actions", "rewards", "terminations", "truncations")
    if not isinstance(group, h5py.Group):
        raise DatasetError(f"{source}: expected a group")
    missing = [k for k in keys if k not in group]
    if missing:
        raise DatasetError(f"{source}: missing dataset(s) {', '.join(missing)}")
    if not isinstance(group["observations"], h5py.Dataset):
        raise DatasetError(f"{source}: dict observations are not supported (flat arrays only)")
    obs = group["observations"][()]
    steps = group["rewards"].shape[0] if group["rewards"].ndim else -1
    if obs.ndim != 2 or obs.shape[0] != steps + 1:
        raise DatasetError(
            f"{source}: 'observations' must hold steps + 1 = {steps + 1} rows, got {obs.shape}"
        )
    terminals = np.asarray(group["terminations"][()], bool)
    timeouts = np.asarray(group["truncations"][()], bool)
    well_formed = terminals.shape == timeouts.shape and terminals.ndim == 1 and len(terminals)
    if well_formed and not (terminals[-1] or timeouts[-1]):
        timeouts = timeouts.copy()
        timeouts[-1] = True  # every episode group is a whole episode
    data = validated(
        {
            "observations": obs[:-1],
            "next_observations": obs[1:],
            "actions": group["actions"][()],
            "rewards": group["rewards"][()],
            "terminals": terminals,
            "timeouts": timeouts,
        },
        source,
        discrete=discrete,
    )
    return data


# ---- Plain files ------------------------------------------------------------------------------


def file_path(rest: str) -> pathlib.Path:
    path = pathlib.Path(rest).expanduser()
    if not path.is_file():
        raise DatasetError(
            f"file:{rest}: no such file {path.resolve()} (expected a D4RL-layout HDF5 or a "
            "d3rlpy .h5 replay buffer written by ReplayBuffer.dump)"
        )
    return path


def _peek_file(path: pathlib.Path) -> tuple[str, bool | None]:
    """('d4rl' | 'd3rlpy', discrete or None when unknown) from the file's keys."""
    try:
        with h5py.File(path, "r") as f:
            if "columns" in f and "num_episodes" in f:
                actions = f.get("actions_0")
                return "d3rlpy", None if actions is None else actions.dtype.kind in "iu"
            actions = f.get("actions")
            if isinstance(actions, h5py.Dataset):
                return "d4rl", actions.dtype.kind in "iu" and actions.ndim == 1
            return "d4rl", None
    except OSError as exc:
        raise DatasetError(
            f"{path}: not a readable HDF5 file ({str(exc).splitlines()[0]})"
        ) from exc


def _describe_file(spec: str, rest: str) -> DatasetInfo:
    path = file_path(rest)
    layout, discrete = _peek_file(path)
    meta = read_metadata(path) if layout == "d4rl" else {}
    if isinstance(meta.get("discrete"), bool):
        discrete = meta["discrete"]
    env_id = meta.get("env_id") if isinstance(meta.get("env_id"), str) else None
    lo, hi = meta.get("ref_min_return"), meta.get("ref_max_return")
    notes = [] if env_id else [f"{path.name} records no env_id: no evaluation rollouts"]
    return DatasetInfo(
        spec,
        "file",
        bool(discrete),
        env_id,
        float(lo) if isinstance(lo, (int, float)) else None,
        float(hi) if isinstance(hi, (int, float)) else None,
        tuple(notes),
    )


def read_d3rlpy_h5(path: pathlib.Path) -> Transitions:
    """A replay buffer written by d3rlpy's ReplayBuffer.dump, read by d3rlpy's loader."""
    from d3rlpy.dataset import InfiniteBuffer, ReplayBuffer

    try:
        with path.open("rb") as f:
            buffer = ReplayBuffer.load(f, InfiniteBuffer())
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as exc:
        raise DatasetError(f"{path}: not a readable d3rlpy replay buffer ({exc})") from exc
    parts = []
    for i, ep in enumerate(buffer.episodes):
        obs = ep.observations
        if not isinstance(obs, np.ndarray):
            raise DatasetError(f"{path}: episode {i} has tuple observations (not supported)")
        n = len(ep.rewards)
        terminals = np.zeros(n, bool)
        timeouts = np.zeros(n, bool)
        (terminals if ep.terminated else timeouts)[-1] = True
        actions = ep.actions
        parts.append(
            validated(
                {
                    "observations": obs,
                    "actions": actions,
                    "rewards": ep.rewards,
                    "terminals": terminals,
                    "timeouts": timeouts,
                },
                f"{path} (episode {i})",
                discrete=actions.dtype.kind in "iu",
            )
        )
    if not parts:
        raise DatasetError(f"{path}: the replay buffer holds no episodes")
    return concatenate(parts)


# ---- entry points -----------------------------------------------------------------------------


def describe(spec: str) -> DatasetInfo:
    kind, rest = split_spec(spec)
    if kind == "builtin":
        b = BUILTINS[rest]
        notes = (
            ("behaviour policies trained online with d3rlpy SAC; references are D4RL's",)
            if b.is_mujoco
            else (
                "scripted behaviour policies; references are the recorded "
                "mean returns of the random and expert controllers",
            )
        )
        return DatasetInfo(
            spec, "builtin", b.discrete, b.env_id, b.ref_min_return, b.ref_max_return, notes
        )
    if kind == "d4rl":
        return _describe_d4rl(spec, rest)
    if kind == "minari":
        return _describe_minari(spec, rest)
    return _describe_file(spec, rest)


def read_user_data(
    info: DatasetInfo,
) -> tuple[Transitions, dict[str, Any], pathlib.Path]:
    """Transitions of a d4rl:/minari:/file: spec (builtins go through builtin.ensure_builtin)."""
    kind, rest = split_spec(info.spec)
    if kind == "d4rl":
        path = resolve_d4rl(rest)
        data, meta = read_d4rl_hdf5(path, discrete=False)
        return data, meta, path
    if kind == "minari":
        return read_minari(rest, discrete=info.discrete)
    path = file_path(rest)
    layout, _ = _peek_file(path)
    if layout == "d3rlpy":
        return read_d3rlpy_h5(path), {}, path
    data, meta = read_d4rl_hdf5(path, discrete=info.discrete)
    return data, meta, path
