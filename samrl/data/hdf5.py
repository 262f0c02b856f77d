"""D4RL's HDF5 layout: flat datasets at the root plus a `metadata/` group."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import h5py
import numpy as np

from samrl.data.transitions import REQUIRED_KEYS, Transitions, validated
from samrl.errors import DatasetError

METADATA_GROUP = "metadata"
_JSON_ATTR = "samrl_json"  # the exact metadata dict; the plain attrs/datasets are for other tools


def write_d4rl_hdf5(path: pathlib.Path, data: Transitions, metadata: dict[str, Any]) -> None:
    """Write atomically: a reader sees either no file or a complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("observations", data=data.observations)
            f.create_dataset("actions", data=data.actions)
            f.create_dataset("rewards", data=data.rewards)
            f.create_dataset("terminals", data=data.terminals)
            f.create_dataset("timeouts", data=data.timeouts)
            if data.next_observations is not None:
                f.create_dataset("next_observations", data=data.next_observations)
            group = f.create_group(METADATA_GROUP)
            group.attrs[_JSON_ATTR] = json.dumps(metadata, sort_keys=True)
            for key, value in metadata.items():
                _write_metadata_item(group, key, value)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_metadata_item(group: h5py.Group, key: str, value: Any) -> None:
    if isinstance(value, (str, bool, int, float)):
        group.attrs[key] = value
    elif isinstance(value, (list, tuple, np.ndarray)) and all(
        isinstance(v, (int, float, np.number)) for v in value
    ):
        group.create_dataset(key, data=np.asarray(value, dtype=np.float64))
    elif value is not None:
        group.attrs[key] = json.dumps(value, sort_keys=True)


def read_metadata(path: pathlib.Path) -> dict[str, Any]:
    """Just the metadata: cheap, the big arrays are not read."""
    try:
        with h5py.File(path, "r") as f:
            return _metadata_of(f)
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({_short(exc)})") from exc


def _metadata_of(f: h5py.File) -> dict[str, Any]:
    group = f.get(METADATA_GROUP)
    if not isinstance(group, h5py.Group):
        return {}
    if _JSON_ATTR in group.attrs:
        return json.loads(group.attrs[_JSON_ATTR])
    # Someone else's file (e.g. D4RL's own): take what is there, decoding bytes.
    out: dict[str, Any] = {k: _plain(v) for k, v in group.attrs.items()}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.size <= 10_000:
            out[name] = _plain(obj[()])

    group.visititems(visit)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.dtype.kind in "SO" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_d4rl_hdf5(
    path: pathlib.Path, *, discrete: bool | None = None, next_observations: bool = True
) -> tuple[Transitions, dict[str, Any]]:
    """The file's transitions and metadata. `next_observations=False` leaves that array on
    disk: training reads the next step's row, and a 2M-step
    file's next observations would be a second copy of the observations in memory."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({_short(exc)})") from exc
    try:
        with f:
            raw, metadata = _read_arrays(f, path, next_observations)
    except OSError as exc:  # e.g. a truncated file that still opens
        raise DatasetError(f"{path}: unreadable HDF5 data ({_short(exc)})") from exc
    return validated(raw, str(path), discrete=discrete), metadata


def _read_arrays(
    f: h5py.File, path: pathlib.Path, next_observations: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    missing = [k for k in REQUIRED_KEYS if k not in f and k != "timeouts"]
    if missing:
        raise DatasetError(
            f"{path}: not in D4RL layout, missing dataset(s) {', '.join(missing)} "
            f"(found: {', '.join(sorted(f.keys())) or 'nothing'})"
        )
    raw: dict[str, np.ndarray] = {}
    for key in (*REQUIRED_KEYS, "next_observations"):
        if key in f:
            if not isinstance(f[key], h5py.Dataset):
                raise DatasetError(f"{path}: '{key}' is a group, expected a dataset")
            if key == "next_observations" and not next_observations:
                shape, obs_shape = f[key].shape, f["observations"].shape
                if len(obs_shape) == 2 and shape != obs_shape:  # left on disk, shape checked
                    raise DatasetError(
                        f"{path}: 'next_observations' has shape {shape}, 'observations' has "
                        f"{obs_shape}"
                    )
                continue
            raw[key] = f[key][()]
    return raw, _metadata_of(f)


def is_d4rl_layout(path: pathlib.Path) -> bool:
    with h5py.File(path, "r") as f:
        return "observations" in f and "actions" in f


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
