"""Reading what runs and sweeps wrote: run CSVs, configs, statuses, the runs of a sweep.

`samrl.results.aggregate` builds summary.csv / aggregate.csv from these; `samrl.analysis`
plots and reports read through them. File names and formats belong to `samrl.rundir`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from samrl.config.resolve import resolve
from samrl.config.yamlio import apply_override
from samrl.errors import ConfigError
from samrl.networks import (
    LEGACY_SINGLE_NETWORK,
    canonical_network,
    is_legacy_column,
    legacy_columns,
)
from samrl.rundir import (
    HESSIAN_FILE,
    POSTHOC_HESSIAN_FILE,
    POSTHOC_SHARPNESS_FILE,
    SHARPNESS_FILE,
    STATUS_FILE,
    RunDir,
    SweepDir,
)
from samrl.status import RunStatus

# Run tables naming networks: in columns (`<net>_sharpness`, `<net>_trace`) or in a `net` column.
_NETWORK_COLUMNS = (SHARPNESS_FILE, HESSIAN_FILE)
_NETWORK_ROWS = (POSTHOC_SHARPNESS_FILE, POSTHOC_HESSIAN_FILE)


@dataclass(frozen=True)
class RunEntry:
    """One run of a sweep: its directory (may not exist yet), grid point and seed if known."""

    directory: Path
    point: Mapping[str, Any] | None = None
    seed: int | None = None
    run_id: str | None = None
    base_config: Mapping[str, Any] | None = None  # the sweep's, for a run not started yet


def read_csv(path: Path) -> pd.DataFrame:
    """A run CSV, or an empty frame when it is missing or has no rows yet."""
    if not path.is_file():
        return pd.DataFrame()
    try:
        # A crash can leave a half-written last row: it parses with NaNs, which we tolerate.
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def read_run_table(run_dir: Path, file_name: str) -> pd.DataFrame:
    """A CSV of a run directory (`read_csv`) in today's network names: in a run written when
    every single network was called `loss`, its `loss_*` columns and `net` values are renamed
    (`loss_sharpness` -> `q_sharpness` in DQN; samrl/networks.py holds the mapping)."""
    run_dir = Path(run_dir)
    frame = read_csv(run_dir / file_name)
    if file_name in _NETWORK_COLUMNS and any(map(is_legacy_column, frame.columns)):
        frame = frame.rename(columns=legacy_columns(frame.columns, _algo_name(run_dir)))
    elif (
        file_name in _NETWORK_ROWS
        and "net" in frame
        and (frame["net"].astype(str) == LEGACY_SINGLE_NETWORK).any()
    ):
        algo = _algo_name(run_dir)
        frame["net"] = [canonical_network(net, algo) for net in frame["net"]]
    return frame


def _algo_name(run_dir: Path) -> str:
    return str(get_path(read_config(run_dir), "algo.name"))


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's config.yaml ({} when missing or unreadable)."""
    return RunDir(run_dir).read_config()


def entry_config(entry: RunEntry) -> dict[str, Any]:
    """The run's config.yaml; for a run not started yet, the config it will train with (the
    sweep's base config at its grid point and seed, with samrl's defaults filled in), so
    that it joins its grid point's row in the tables instead of forming one of its own."""
    config = read_config(entry.directory)
    if config or not isinstance(entry.base_config, Mapping):
        return config
    # lazy: resolving a config imports d3rlpy, which reading finished runs never needs

    raw = copy.deepcopy(dict(entry.base_config))
    try:
        for key, value in (entry.point or {}).items():
            apply_override(raw, key, copy.deepcopy(value))
        if entry.seed is not None:
            apply_override(raw, "train.seed", entry.seed)
        return resolve(raw, source="sweep.json", check_dataset=False).to_dict()
    except ConfigError:
        return {}  # a base config that no longer resolves: the run's keys stay unknown


def read_status(run_dir: Path) -> dict[str, Any]:
    """status.json; `pending` when not written yet (`RunDir.read_status` is the contract), and
    `interrupted` for a `running` run that no process holds (it was killed; resume continues
    it)."""
    run = RunDir(run_dir)
    status = run.read_status()
    if status["status"] == RunStatus.RUNNING and not run.is_locked():
        return {**status, "status": RunStatus.INTERRUPTED}
    return status


def get_path(config: Mapping[str, Any], key: str) -> Any:
    """config["a"]["b"] for key "a.b"; None when any part is missing."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def declared_point(entry: RunEntry) -> dict[str, Any]:
    """The run's grid point: from sweep.json, else from config.yaml's sweep.point, else {}."""
    if entry.point:
        return dict(entry.point)
    return dict(get_path(read_config(entry.directory), "sweep.point") or {})


def run_path(sweep_dir: Path, run_dir: str) -> Path:
    """A summary's run_dir column value as a path (it is relative to the sweep directory)."""
    path = Path(run_dir)
    return path if path.is_absolute() else Path(sweep_dir) / path


# --------------------------------------------------------------------------- finding runs


def is_run_dir(path: Path) -> bool:
    return RunDir(path).is_run()


def find_runs(sweep_dir: Path) -> list[RunEntry]:
    """The runs of a sweep: from sweep.json when present, else every directory one or two
    levels below `sweep_dir` that holds a status.json (a lone run directory is its own run)."""
    sweep_dir = Path(sweep_dir)
    spec = SweepDir(sweep_dir).read_record()
    if spec is not None:
        return [
            RunEntry(
                directory=sweep_dir / str(run.get("dir", run.get("run_id", ""))),
                point=run.get("point"),
                seed=run.get("seed"),
                run_id=run.get("run_id"),
                base_config=spec.get("base_config"),
            )
            for run in spec.get("runs", [])
        ]
    if (sweep_dir / STATUS_FILE).is_file():
        return [RunEntry(sweep_dir)]
    found = sorted(
        {
            p.parent
            for pattern in ("*/" + STATUS_FILE, "*/*/" + STATUS_FILE)
            for p in sweep_dir.glob(pattern)
        }
    )
    return [RunEntry(directory) for directory in found]


def read_sweep_spec(sweep_dir: Path) -> dict[str, Any] | None:
    """sweep.json (None without one; RunError when it is not valid JSON)."""
    return SweepDir(sweep_dir).read_record()
