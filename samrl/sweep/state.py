"""A sweep's state on disk: what sweep.json records, the state of each run, the lock.

The files themselves (names, reading, atomic writing) belong to `samrl.rundir.SweepDir`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samrl.config.yamlio import flatten
from samrl.errors import RunError
from samrl.rundir import RunDir, RunWriteError, SweepDir
from samrl.status import RunState, RunStatus
from samrl.sweep.grid import RunPlan, SweepSpec

#: Keys of the base config that do not change results (the sweep sets them per run).
IGNORED_BASE_KEYS = ("output", "name")


def sweep_record(spec: SweepSpec, plans: list[RunPlan]) -> dict[str, Any]:
    """sweep.json as docs/run-directory.md describes it."""
    return {
        "name": spec.name,
        "base_config": spec.base_config(),
        "grid": spec.grid,
        **({"grids": spec.grids} if spec.grids else {}),
        "seeds": spec.seeds,
        "source": spec.source,
        "runs": [
            {
                "run_id": p.run_id,
                "dir": SweepDir.run_entry(p.run_id),
                "point": p.point,
                "seed": p.seed,
                "config_hash": p.config.result_hash(),
            }
            for p in plans
        ],
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def sweep_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a recorded sweep and a new one (base config and grid; seeds may
    change: a sweep can be extended with more seeds)."""
    changes: list[str] = []
    old_grid, new_grid = old.get("grid") or {}, new["grid"]
    if _canonical(old.get("grids")) != _canonical(new.get("grids")):
        changes.append(f"grid list: {old.get('grids')} -> {new.get('grids')}")
    for key in list(dict.fromkeys([*old_grid, *new_grid])):
        if _canonical(old_grid.get(key)) != _canonical(new_grid.get(key)):
            changes.append(f"grid {key}: {old_grid.get(key)} -> {new_grid.get(key)}")
    old_base = flatten(
        {k: v for k, v in (old.get("base_config") or {}).items() if k not in IGNORED_BASE_KEYS}
    )
    new_base = flatten({k: v for k, v in new["base_config"].items() if k not in IGNORED_BASE_KEYS})
    for key in sorted(set(old_base) | set(new_base)):
        if _canonical(old_base.get(key)) != _canonical(new_base.get(key)):
            changes.append(f"{key}: {old_base.get(key)!r} -> {new_base.get(key)!r}")
    return changes


def check_compatible(sweep_dir: Path, record: dict[str, Any]) -> None:
    """Refuse to mix a changed sweep into an existing sweep directory."""
    old = SweepDir(sweep_dir).read_record()
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
    SweepDir(sweep_dir).write(record, {plan.run_id: plan.raw for plan in plans})


def run_state(plan: RunPlan) -> RunState:
    """How a sweep sees the run before launching it (changed: its config hash differs)."""
    run = RunDir(plan.run_dir)
    if run.is_empty():
        return RunState.NEW
    saved = run.saved_hash()
    if saved is not None and saved != plan.config.result_hash():
        return RunState.CHANGED
    status = run.read_status()
    value = status.get("status")
    if value in (RunStatus.COMPLETED, RunStatus.DIVERGED):
        return RunState(value)
    if value == RunStatus.FAILED and status.get("error") != RunStatus.INTERRUPTED:
        return RunState.FAILED
    return RunState.INTERRUPTED  # running (its process died), interrupted, pending or unreadable


def run_error(plan: RunPlan) -> str:
    return str(RunDir(plan.run_dir).read_status().get("error") or "")


def clear_run(plan: RunPlan) -> None:
    """Delete a run directory so it starts again from scratch (retried failures)."""
    if plan.run_dir.is_dir():
        shutil.rmtree(plan.run_dir)


def clear_sweep(sweep_dir: Path) -> None:
    """--overwrite: delete everything a sweep wrote (the directory itself stays, with its lock)."""
    if not sweep_dir.is_dir():
        return
    for child in sweep_dir.iterdir():
        if child == SweepDir(sweep_dir).lock_file:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """One sweep process per directory (released by the OS if the process dies)."""
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        handle = SweepDir(sweep_dir).lock_file.open("w")
    except OSError as exc:
        blocker = next((p for p in [sweep_dir, *sweep_dir.parents] if p.is_file()), None)
        if blocker is not None:
            raise RunError(
                f"cannot create the sweep directory {sweep_dir}: {blocker} is a file, not a "
                "directory; choose another --out"
            ) from None
        raise RunWriteError(exc.filename or sweep_dir, exc) from None
    with handle:
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
