"""The sweep directory on disk: sweep.json, per-run config files, run states, a lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from samrl.errors import RunError
from samrl.runs import atomic_write, read_status
from samrl.sweep.grid import RunPlan, SweepSpec

SWEEP_FILE = "sweep.json"
CONFIGS_DIR = "configs"
LOGS_DIR = "logs"
LOCK_FILE = ".lock"
#: States of a run as seen before launching: which ones a sweep runs, skips or reports.
STATES = ("new", "interrupted", "completed", "failed", "diverged", "changed")
#: Keys of the base config that do not change results (the sweep sets them per run).
IGNORED_BASE_KEYS = ("output", "name")


def config_path(sweep_dir: Path, run_id: str) -> Path:
    """The per-run config file the worker trains from (`samrl train --config <this>`)."""
    return sweep_dir / CONFIGS_DIR / f"{run_id}.yaml"


def log_path(sweep_dir: Path, run_id: str) -> Path:
    return sweep_dir / LOGS_DIR / f"{run_id}.log"


def sweep_record(spec: SweepSpec, plans: list[RunPlan]) -> dict[str, Any]:
    """sweep.json as docs/run-directory.md describes it."""
    return {
        "name": spec.name,
        "base_config": spec.base_config(),
        "grid": spec.grid,
        "seeds": spec.seeds,
        "source": spec.source,
        "runs": [
            {
                "run_id": p.run_id,
                "dir": f"runs/{p.run_id}",
                "point": p.point,
                "seed": p.seed,
                "config_hash": p.config.result_hash(),
            }
            for p in plans
        ],
    }


def read_record(sweep_dir: Path) -> dict[str, Any] | None:
    path = sweep_dir / SWEEP_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(
            f"{path}: not valid JSON ({exc.msg}); use --overwrite to start again"
        ) from None
    return record if isinstance(record, dict) else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict) or (not data and prefix):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def sweep_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a recorded sweep and a new one (base config and grid; seeds may
    change: a sweep can be extended with more seeds)."""
    changes: list[str] = []
    old_grid, new_grid = old.get("grid") or {}, new["grid"]
    for key in list(dict.fromkeys([*old_grid, *new_grid])):
        if _canonical(old_grid.get(key)) != _canonical(new_grid.get(key)):
            changes.append(f"grid {key}: {old_grid.get(key)} -> {new_grid.get(key)}")
    old_base = _flatten(
        {k: v for k, v in (old.get("base_config") or {}).items() if k not in IGNORED_BASE_KEYS}
    )
    new_base = _flatten({k: v for k, v in new["base_config"].items() if k not in IGNORED_BASE_KEYS})
    for key in sorted(set(old_base) | set(new_base)):
        if _canonical(old_base.get(key)) != _canonical(new_base.get(key)):
            changes.append(f"{key}: {old_base.get(key)!r} -> {new_base.get(key)!r}")
    return changes


def check_compatible(sweep_dir: Path, record: dict[str, Any]) -> None:
    """Refuse to mix a changed sweep into an existing sweep directory."""
    old = read_record(sweep_dir)
    if old is None:
        return
    changes = sweep_changes(old, record)
    if changes:
        shown = "; ".join(changes[:3]) + (
            f"; and {len(changes) - 3} more" if len(changes) > 3 else ""
        )
        raise RunError(
            f"{sweep_dir} holds a different sweep ({shown}); use another --name or --out, "
            "or --overwrite to delete it and start again"
        )


def write_sweep(sweep_dir: Path, record: dict[str, Any], plans: list[RunPlan]) -> None:
    """sweep.json and one config file per run (rewritten each time; cheap and idempotent)."""
    (sweep_dir / CONFIGS_DIR).mkdir(parents=True, exist_ok=True)
    (sweep_dir / LOGS_DIR).mkdir(exist_ok=True)
    for plan in plans:
        atomic_write(config_path(sweep_dir, plan.run_id), yaml.safe_dump(plan.raw, sort_keys=False))
    atomic_write(sweep_dir / SWEEP_FILE, json.dumps(record, indent=2, default=str) + "\n")


def _saved_hash(run_dir: Path) -> str | None:
    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return (data.get("samrl") or {}).get("config_hash") if isinstance(data, dict) else None


def run_state(plan: RunPlan) -> str:
    """new | interrupted | completed | failed | diverged | changed (config hash differs)."""
    run_dir = plan.run_dir
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return "new"
    saved = _saved_hash(run_dir)
    if saved is not None and saved != plan.config.result_hash():
        return "changed"
    status = read_status(run_dir) or {}
    value = status.get("status")
    if value in ("completed", "diverged"):
        return str(value)
    if value == "failed" and status.get("error") != "interrupted":
        return "failed"
    return "interrupted"  # running (its process died), interrupted, or no status yet


def run_error(plan: RunPlan) -> str:
    return str((read_status(plan.run_dir) or {}).get("error") or "")


def clear_run(plan: RunPlan) -> None:
    """Delete a run directory so it starts again from scratch (retried failures)."""
    if plan.run_dir.is_dir():
        shutil.rmtree(plan.run_dir)


def clear_sweep(sweep_dir: Path) -> None:
    """--overwrite: delete everything a sweep wrote (the directory itself stays, with its lock)."""
    if not sweep_dir.is_dir():
        return
    for child in sweep_dir.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """One sweep process per directory (released by the OS if the process dies)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with (sweep_dir / LOCK_FILE).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(
                f"another samrl sweep is running in {sweep_dir}; wait for it or stop it first"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
