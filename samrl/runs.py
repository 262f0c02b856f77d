"""The run directory: CSV tables appended per epoch, status.json, resume checkpoints."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

SHARPNESS_SUFFIXES = ("_sharpness", "_loss_perturbed", "_grad_norm")
STATUS_FILE = "status.json"
CHECKPOINT_DIR = "checkpoint"


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def format_value(value: Any) -> str:
    """Full-precision, platform-independent text (repr of a Python float)."""
    if value is None:
        return ""
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    return repr(value) if value == value else "nan"


class CsvTable:
    """A CSV file with a header, one row per epoch, flushed as each row is written.

    Columns are fixed by the first row; a column first seen later rewrites the file with it
    (earlier rows get empty cells), so no value is ever dropped.
    """

    def __init__(self, path: Path):
        self.path = path
        self.columns: list[str] = []
        if path.exists():
            with path.open(newline="") as f:
                header = next(csv.reader(f), None)
            self.columns = list(header or [])

    def append(self, row: dict[str, Any]) -> None:
        new = [k for k in row if k not in self.columns]
        if new or not self.path.exists():
            self._rewrite_with(self.columns + new)
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([format_value(row.get(c)) for c in self.columns])
            f.flush()
            os.fsync(f.fileno())

    def _rewrite_with(self, columns: list[str]) -> None:
        rows: list[dict[str, str]] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([r.get(c, "") for c in columns])
        atomic_write(self.path, buffer.getvalue())
        self.columns = columns

    def truncate_after(self, epoch: int) -> None:
        """Drop rows of epochs after `epoch` (written before a crash, not checkpointed)."""
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if int(r["epoch"]) <= epoch]
        if len(kept) != len(rows):
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(self.columns)
            for r in kept:
                writer.writerow([r.get(c, "") for c in self.columns])
            atomic_write(self.path, buffer.getvalue())


def truncate_epoch_rows(path: Path, epoch: int) -> None:
    """d3rlpy's own metric CSVs (`epoch,step,...`; header lines, where present, are kept)."""
    lines = path.read_text().splitlines(keepends=True)

    def keep(line: str) -> bool:
        first = line.split(",", 1)[0].strip()
        return bool(line.strip()) and (not first.isdigit() or int(first) <= epoch)

    kept = [line for line in lines if keep(line)]
    if len(kept) != len(lines):
        atomic_write(path, "".join(kept))


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def read_status(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / STATUS_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None


def write_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    status = read_status(run_dir) or {}
    status.update(fields)
    atomic_write(run_dir / STATUS_FILE, json.dumps(status, indent=2) + "\n")
    return status


# ---------------------------------------------------------------- resume checkpoints


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, algo: Any, epoch: int, step: int, extra: dict[str, Any]) -> None:
    """Model + optimizer states (d3rlpy's save_model), RNG states and counters.

    The state file names its model file and is replaced last, so a crash at any point leaves
    the previous complete checkpoint in force.
    """
    folder = run_dir / CHECKPOINT_DIR
    folder.mkdir(exist_ok=True)
    model_name = f"model_epoch{epoch}.pt"
    algo.save_model(str(folder / model_name))
    state = {
        "epoch": epoch,
        "step": step,
        "grad_step": algo.grad_step,
        "rng": rng_state(),
        "model": model_name,
        **extra,
    }
    state_tmp = folder / ".state.pt.tmp"
    torch.save(state, state_tmp)
    os.replace(state_tmp, folder / "state.pt")
    for old in folder.glob("model_epoch*.pt"):
        if old.name != model_name:
            old.unlink()


def load_checkpoint(run_dir: Path, algo: Any) -> dict[str, Any] | None:
    state_path = run_dir / CHECKPOINT_DIR / "state.pt"
    if not state_path.exists():
        return None
    state = torch.load(state_path, weights_only=False)
    algo.load_model(str(run_dir / CHECKPOINT_DIR / state["model"]))
    algo.set_grad_step(state["grad_step"])
    return state
