"""Dataset specs: what a spec names (describe) and how its transitions are read (read)."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import h5py

from samrl.data.builtin import BUILTINS
from samrl.data.d3rlpy_source import (
    buffer_transitions,
    d3rlpy_dataset,
    describe_d3rlpy,
    fetch_d3rlpy,
    read_d3rlpy,
)
from samrl.data.download import refuse_if_offline
from samrl.data.hdf5 import read_d4rl_hdf5, read_metadata
from samrl.data.info import DatasetInfo
from samrl.data.minari_source import (
    MINARI_DIR_ENV,
    describe_minari,
    minari_paths,
    minari_root,
    read_minari,
)
from samrl.data.references import D4RL_REFERENCES, MUJOCO_ENV_IDS
from samrl.data.remote import D4RL_DIR_ENV, D4RL_PATHS, d4rl_dir, d4rl_remote
from samrl.data.transitions import Transitions
from samrl.envvars import offline
from samrl.errors import DatasetError, suggest, unknown_name

PREFIXES = ("d4rl", "minari", "d3rlpy", "file")
__all__ = ["D4RL_DIR_ENV", "MINARI_DIR_ENV", "d4rl_dir", "minari_root"]
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
        + " (or a user dataset: d4rl:<name>, minari:<id>, d3rlpy:<name>, file:<path>)"
    )


# ---- D4RL files -------------------------------------------------------------------------------


def d4rl_candidate_paths(name: str) -> list[pathlib.Path]:
    """D4RL names its files after the download URL: 'hopper-medium-replay-v2' is stored as
    'hopper_medium_replay-v2.hdf5' (underscores inside, dash before the version); v0 files
    have no version ('hopper_medium.hdf5', medium-replay-v0 is 'hopper_mixed.hdf5'). The name
    as written is tried too."""
    stem = name.removesuffix(".hdf5")
    match = re.fullmatch(r"(.+)-(v\d+)", stem)
    names = []
    if stem in D4RL_PATHS:
        names.append(D4RL_PATHS[stem].rsplit("/", 1)[1])
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


def local_d4rl(name: str) -> pathlib.Path | None:
    return next((p for p in d4rl_candidate_paths(name) if p.is_file()), None)


def check_d4rl_available(name: str) -> None:
    """Raise unless d4rl:<name> is on disk or can be downloaded now (nothing is downloaded)."""
    if local_d4rl(name) is not None:
        return
    remote = d4rl_remote(name)
    if remote is None:
        candidates = d4rl_candidate_paths(name)
        raise DatasetError(
            f"d4rl:{name}: no file at {' or '.join(map(str, candidates))}, and D4RL publishes "
            f"no dataset of that name to download{_suggest_d4rl(name)}"
        )
    if offline():
        refuse_if_offline(remote.spec, remote.path)


def check_available(spec: str) -> None:
    """Raise unless a named remote dataset is on disk or can be downloaded now (validation:
    nothing is downloaded). Built-ins and files are checked elsewhere."""
    kind, rest = split_spec(spec)
    if kind == "d4rl":
        check_d4rl_available(rest)
    elif kind == "d3rlpy":
        remote = d3rlpy_dataset(rest).remote()
        if not remote.path.is_file():
            refuse_if_offline(remote.spec, remote.path)


def _suggest_d4rl(name: str) -> str:

    return suggest(name, D4RL_PATHS) or " (see `samrl data list --remote`)"


def resolve_d4rl(name: str, *, progress: bool = True) -> pathlib.Path:
    """The local file of d4rl:<name>, downloaded from D4RL's URL on first use."""
    local = local_d4rl(name)
    if local is not None:
        return local
    check_d4rl_available(name)
    remote = d4rl_remote(name)
    assert remote is not None
    return remote.fetch(progress=progress)


# ---- Plain files ------------------------------------------------------------------------------


def file_path(rest: str) -> pathlib.Path:
    path = pathlib.Path(rest).expanduser()
    if path.is_dir():
        raise DatasetError(
            f"file:{rest}: {path.resolve()} is a directory; name the dataset file inside it "
            "(a D4RL-layout HDF5 or a d3rlpy .h5 replay buffer)"
        )
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
    return buffer_transitions(buffer, str(path))


# ---- entry points -----------------------------------------------------------------------------


def describe(spec: str) -> DatasetInfo:
    kind, rest = split_spec(spec)
    if kind == "builtin":
        b = BUILTINS[rest]
        notes = (
            (
                "behaviour policy: a randomly initialised SAC policy (no training); "
                "references are D4RL's"
                if b.level == "random"
                else "behaviour policies trained online with d3rlpy SAC; references are D4RL's",
            )
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
        return describe_minari(spec, rest)
    if kind == "d3rlpy":
        return describe_d3rlpy(spec, rest)
    return _describe_file(spec, rest)


def read_user_data(
    info: DatasetInfo, *, progress: bool = False, next_observations: bool = True
) -> tuple[Transitions, dict[str, Any], pathlib.Path]:
    """Transitions of a d4rl:/minari:/d3rlpy:/file: spec (builtins go through
    builtin.ensure_builtin); named datasets are downloaded on first use unless offline.
    `next_observations=False`: a D4RL-layout file's next observations are not read."""
    kind, rest = split_spec(info.spec)
    if kind == "d3rlpy":
        return read_d3rlpy(rest, progress=progress)
    if kind == "d4rl":
        path = resolve_d4rl(rest, progress=progress)
        data, meta = read_d4rl_hdf5(path, discrete=False, next_observations=next_observations)
        return data, meta, path
    if kind == "minari":
        return read_minari(rest, discrete=info.discrete)
    path = file_path(rest)
    layout, _ = _peek_file(path)
    if layout == "d3rlpy":
        return read_d3rlpy_h5(path), {}, path
    data, meta = read_d4rl_hdf5(path, discrete=info.discrete, next_observations=next_observations)
    return data, meta, path


def local_file(spec: str, *, progress: bool = False) -> pathlib.Path:
    """The one file a d4rl:/d3rlpy:/minari:/file: dataset is read from (named ones fetched
    first if missing), for its sha256."""
    kind, rest = split_spec(spec)
    if kind == "file":
        return file_path(rest)
    fetched = fetch_named(spec, progress=progress)
    if kind == "minari":
        return minari_paths(rest)[0]
    assert fetched is not None
    return fetched


def fetch_named(spec: str, *, progress: bool = True) -> pathlib.Path | None:
    """Make a named remote dataset local, downloading it if needed; its local path. None for
    built-ins and files (nothing to download)."""
    kind, rest = split_spec(spec)
    if kind == "d4rl":
        return resolve_d4rl(rest, progress=progress)
    if kind == "d3rlpy":
        return fetch_d3rlpy(rest, progress=progress)
    if kind == "minari":
        describe_minari(spec, rest)  # loads (downloading on first use) through Minari's API
        return minari_root() / rest
    return None
