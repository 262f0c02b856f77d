"""The per-epoch CSV tables of a run directory (loss.csv, sharpness.csv, eval.csv, ...)."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from samrl.rundir import RunWriteError, atomic_write


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
