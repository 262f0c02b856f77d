"""Minari datasets: read and downloaded through Minari's own API when the `samrl[minari]` extra
is installed; without it, local datasets are read from their HDF5 files by hand (the fallback)
and a missing one is a one-line error saying what to install.

Minari chooses where datasets live ($MINARI_DATASETS_PATH, default ~/.minari/datasets) and which
server they come from ($MINARI_REMOTE); samrl only asks it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

import h5py
import numpy as np

from samrl.data.download import refuse_if_offline
from samrl.data.info import DatasetInfo
from samrl.data.transitions import Transitions, concatenate, validated
from samrl.envvars import offline
from samrl.errors import DatasetError

MINARI_DIR_ENV = "MINARI_DATASETS_PATH"
INSTALL_HINT = "pip install 'samrl[minari]'"


def minari_root() -> pathlib.Path:
    env = os.environ.get(MINARI_DIR_ENV)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".minari/datasets"


def minari_paths(dataset_id: str) -> tuple[pathlib.Path, pathlib.Path]:
    """(main_data.hdf5, metadata.json) of a Minari dataset id such as mujoco/hopper/medium-v0."""
    base = minari_root() / dataset_id
    return base / "data" / "main_data.hdf5", base / "metadata.json"


def _minari_api() -> Any | None:
    """The minari module, or None when the extra is not installed."""
    try:
        import minari
    except ImportError:
        return None
    return minari


def _is_local(dataset_id: str) -> bool:
    return (minari_root() / dataset_id / "data").is_dir()


def load_with_api(dataset_id: str, *, fetch: bool = True) -> Any:
    """minari.load_dataset, downloading on first use unless offline; None without the extra."""
    minari = _minari_api()
    spec = f"minari:{dataset_id}"
    if minari is None:
        return None
    local = _is_local(dataset_id)
    if local and not _names_its_spaces(dataset_id):
        return None  # read by hand: Minari would build the env the file names, running its code
    if not local:
        if not fetch:
            raise DatasetError(f"{spec}: not in {minari_root()}; run `samrl data download {spec}`")
        refuse_if_offline(spec, minari_root() / dataset_id)
    try:
        return minari.load_dataset(dataset_id, download=not local)
    except Exception as exc:  # Minari raises many kinds (HTTP, version, spec); one line each
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        action = "load" if local else "download"
        raise DatasetError(f"{spec}: Minari could not {action} it ({first})") from None


def _names_its_spaces(dataset_id: str) -> bool:
    """Whether Minari can read the folder without making an environment. Without both spaces
    in its data/metadata.json, minari.load_dataset makes the env of the file's env_spec to
    learn them, importing and calling the entry point named there: a shared dataset folder
    could run any installed function that way. (No readable file: Minari refuses it.)"""
    try:
        meta = json.loads((minari_root() / dataset_id / "data" / "metadata.json").read_text())
    except (OSError, ValueError):
        return True
    return not isinstance(meta, dict) or all(
        isinstance(meta.get(key), str) for key in ("observation_space", "action_space")
    )


def _missing_without_api(dataset_id: str) -> DatasetError:
    data_path, _ = minari_paths(dataset_id)
    how = (
        f"copy the dataset into ${MINARI_DIR_ENV} (default ~/.minari/datasets)"
        if offline()
        else f"to download it, {INSTALL_HINT}"
    )
    return DatasetError(f"minari:{dataset_id}: no file at {data_path}; {how}")


# ---- describe ----------------------------------------------------------------------------------


def describe_minari(spec: str, dataset_id: str) -> DatasetInfo:
    dataset = load_with_api(dataset_id)
    if dataset is not None:
        return _describe_api(spec, dataset_id, dataset)
    meta = _metadata_json(dataset_id)
    action_space = _json_field(meta, "action_space")
    env_id = _json_field(meta, "env_spec").get("id")
    return _info(spec, dataset_id, action_space.get("type") == "Discrete", env_id, meta)


def _describe_api(spec: str, dataset_id: str, dataset: Any) -> DatasetInfo:
    import gymnasium

    env_spec = dataset.env_spec
    env_id = getattr(env_spec, "id", None)
    discrete = isinstance(dataset.action_space, gymnasium.spaces.Discrete)
    return _info(spec, dataset_id, discrete, env_id, dict(dataset.storage.metadata))


def _info(
    spec: str, dataset_id: str, discrete: bool, env_id: str | None, meta: dict[str, Any]
) -> DatasetInfo:
    lo, hi = meta.get("ref_min_score"), meta.get("ref_max_score")
    if env_id and ":" in env_id:  # gymnasium imports the module named before a ':'
        env_id = None
    notes = () if env_id else (f"Minari dataset {dataset_id} names no env: no evaluation rollouts",)
    return DatasetInfo(
        spec,
        "minari",
        discrete,
        env_id,
        float(lo) if lo is not None else None,
        float(hi) if hi is not None else None,
        notes,
    )


# ---- read --------------------------------------------------------------------------------------


def read_minari(
    dataset_id: str, *, discrete: bool | None
) -> tuple[Transitions, dict[str, Any], pathlib.Path]:
    dataset = load_with_api(dataset_id)
    if dataset is not None:
        return _read_api(dataset_id, dataset, discrete)
    return _read_by_hand(dataset_id, discrete)


def _read_api(
    dataset_id: str, dataset: Any, discrete: bool | None
) -> tuple[Transitions, dict[str, Any], pathlib.Path]:
    parts = []
    for episode in dataset.iterate_episodes():
        source = f"minari:{dataset_id} (episode {episode.id})"
        if isinstance(episode.observations, dict):
            raise DatasetError(f"{source}: dict observations are not supported (flat arrays only)")
        parts.append(
            _episode(
                np.asarray(episode.observations),
                np.asarray(episode.actions),
                np.asarray(episode.rewards),
                np.asarray(episode.terminations, bool),
                np.asarray(episode.truncations, bool),
                source,
                discrete,
            )
        )
    if not parts:
        raise DatasetError(f"minari:{dataset_id}: the dataset holds no episodes")
    meta = {**_plain_metadata(dataset.storage.metadata), "minari_episodes": len(parts)}
    data_file, _ = minari_paths(dataset_id)  # the file read (HDF5 storage), for its sha256
    return (
        concatenate(parts),
        meta,
        data_file if data_file.is_file() else minari_root() / dataset_id,
    )


def _plain_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Minari's metadata holds spaces and specs as objects; keep what YAML/JSON can carry."""
    out = {}
    for key, value in meta.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
    return out


def _metadata_json(dataset_id: str) -> dict[str, Any]:
    data_path, meta_path = minari_paths(dataset_id)
    if not data_path.is_file():
        raise _missing_without_api(dataset_id)
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


def _read_by_hand(
    dataset_id: str, discrete: bool | None
) -> tuple[Transitions, dict[str, Any], pathlib.Path]:
    """The no-extra fallback: Minari's HDF5 layout, one 'episode_<n>' group per episode."""
    meta = _metadata_json(dataset_id)
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
            parts.append(_group_episode(f[name], f"{path}:{name}", discrete))
    meta = {**meta, "minari_episodes": len(parts)}
    return concatenate(parts), meta, path


def _group_episode(group: Any, source: str, discrete: bool | None) -> Transitions:
    keys = ("observations", "actions", "rewards", "terminations", "truncations")
    if not isinstance(group, h5py.Group):
        raise DatasetError(f"{source}: expected a group")
    missing = [k for k in keys if k not in group]
    if missing:
        raise DatasetError(f"{source}: missing dataset(s) {', '.join(missing)}")
    if not isinstance(group["observations"], h5py.Dataset):
        raise DatasetError(f"{source}: dict observations are not supported (flat arrays only)")
    return _episode(
        group["observations"][()],
        group["actions"][()],
        group["rewards"][()],
        np.asarray(group["terminations"][()], bool),
        np.asarray(group["truncations"][()], bool),
        source,
        discrete,
    )


def _episode(
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    terminals: np.ndarray,
    timeouts: np.ndarray,
    source: str,
    discrete: bool | None,
) -> Transitions:
    """One Minari episode (steps + 1 observations) as transitions."""
    steps = rewards.shape[0] if rewards.ndim else -1
    if obs.ndim != 2 or obs.shape[0] != steps + 1:
        raise DatasetError(
            f"{source}: 'observations' must hold steps + 1 = {steps + 1} rows, got {obs.shape}"
        )
    well_formed = terminals.shape == timeouts.shape and terminals.ndim == 1 and len(terminals)
    if well_formed and not (terminals[-1] or timeouts[-1]):
        timeouts = timeouts.copy()
        timeouts[-1] = True  # every episode is a whole episode
    return validated(
        {
            "observations": obs[:-1],
            "next_observations": obs[1:],
            "actions": actions,
            "rewards": rewards,
            "terminals": terminals,
            "timeouts": timeouts,
        },
        source,
        discrete=discrete,
    )
