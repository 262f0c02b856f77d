"""The per-epoch CSV tables of a run directory (loss.csv, sharpness.csv, eval.csv, ...): the
writer of one table, and `RunTables`, which routes a run's per-epoch metrics to them."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from samrl.metrics import is_sam_metric
from samrl.rundir import (
    EVAL_FILE,
    HESSIAN_FILE,
    LOSS_FILE,
    SHARPNESS_FILE,
    RunDir,
    RunWriteError,
    atomic_write,
)


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
        size = self.path.stat().st_size
        try:
            with self.path.open("a", newline="") as f:
                writer = csv.writer(f)
                writer.writerow([format_value(row.get(c)) for c in self.columns])
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            # never leave half a row: cut the file back to its last complete row
            with contextlib.suppress(OSError), self.path.open("r+b") as f:
                f.truncate(size)
            raise RunWriteError(self.path, exc) from exc

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
        try:
            atomic_write(self.path, buffer.getvalue())
        except OSError as exc:
            raise RunWriteError(self.path, exc) from exc
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


# Hessian rows travel through d3rlpy's logger (so trackers get them) under this prefix.
HESSIAN_PREFIX = "hessian_"
EVAL_COLUMNS = frozenset(
    {
        "return_mean",
        "return_std",
        "normalized_score",
        "td_error",
        "value_estimate",
        "action_diff",
        "action_match",
    }
)


class RunTables:
    """Routes d3rlpy's per-epoch metrics into loss.csv, sharpness.csv and eval.csv."""

    def __init__(self, run: RunDir, eval_columns: frozenset[str]):
        self.loss = CsvTable(run.file(LOSS_FILE))
        self.sharpness = CsvTable(run.file(SHARPNESS_FILE))
        self.eval = CsvTable(run.file(EVAL_FILE))
        self.hessian = CsvTable(run.file(HESSIAN_FILE))
        self.eval_columns = eval_columns

    def write(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        head = {"epoch": epoch, "step": step}
        hessian = {
            k.removeprefix(HESSIAN_PREFIX): v
            for k, v in metrics.items()
            if k.startswith(HESSIAN_PREFIX)
        }
        metrics = {k: v for k, v in metrics.items() if not k.startswith(HESSIAN_PREFIX)}
        loss = {
            k: v for k, v in metrics.items() if not is_sam_metric(k) and k not in self.eval_columns
        }
        sharp = {k: v for k, v in metrics.items() if is_sam_metric(k)}
        evals = {k: v for k, v in metrics.items() if k in self.eval_columns}
        self.loss.append({**head, **dict(sorted(loss.items()))})
        if sharp:
            self.sharpness.append({**head, **dict(sorted(sharp.items()))})
        if evals:
            self.eval.append({**head, **evals})
        if hessian:
            self.hessian.append({**head, **hessian})

    def truncate_after(self, epoch: int) -> None:
        for table in (self.loss, self.sharpness, self.eval, self.hessian):
            table.truncate_after(epoch)
