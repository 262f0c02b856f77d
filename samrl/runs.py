"""The run directory: CSV tables appended per epoch, status.json, resume checkpoints."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import fcntl
import io
import json
import os
import random
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samrl.errors import RunError

SHARPNESS_SUFFIXES = ("_sharpness", "_loss_perturbed", "_grad_norm")
STATUS_FILE = "status.json"
CHECKPOINT_DIR = "checkpoint"
LOCK_FILE = ".lock"
#: Resume checkpoints kept: the newest, and one before it in case the newest is unreadable.
KEEP_CHECKPOINTS = 2
_STATE_NAME = re.compile(r"state_step(\d+)\.pt")


class RunWriteError(RunError):
    """The run directory could not be written (disk full, quota, read-only): names the file."""

    def __init__(self, path: Path | str, exc: BaseException):
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        super().__init__(f"cannot write {path}: {reason}")
        self.path = Path(path)


def is_disk_error(exc: BaseException) -> bool:
    """An OSError of the storage (full, quota, read-only, I/O), not of the program."""
    return isinstance(exc, OSError) and exc.errno in (
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EIO,
        errno.EFBIG,
    )


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this process: a second `samrl train` on it refuses at once.

    An flock on `<run_dir>/.lock`: the kernel releases it when the process ends, however it
    ends, so a crash never leaves a stale lock. The file stays (deleting it would let two
    processes lock two different files).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunError(
            f"{run_dir} is in use by {holder}; wait for it to end or stop it first"
        ) from None
    try:
        os.ftruncate(fd, 0)
        holder = f"samrl pid {os.getpid()} on {socket.gethostname()} since {now()}"
        os.pwrite(fd, holder.encode(), 0)
    except OSError:
        pass  # a full disk: the lock holds anyway, only its description is missing
    try:
        yield
    finally:
        os.close(fd)


def run_files(run_dir: Path) -> list[Path]:
    """What a run directory holds, without its lock file."""
    return [p for p in run_dir.iterdir() if p.name != LOCK_FILE] if run_dir.is_dir() else []


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
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
    """Model + optimizer states (d3rlpy's save_model), RNG states and counters at `step`
    (`epoch` epochs complete; `extra` may hold the epoch in progress, see train.py).

    Files are written under temporary names and renamed, the state file last, so a crash or a
    full disk at any point leaves the earlier checkpoints complete; the newest
    KEEP_CHECKPOINTS are kept.
    """
    folder = run_dir / CHECKPOINT_DIR
    model_name, state_name = f"model_step{step}.pt", f"state_step{step}.pt"
    state = {
        "epoch": epoch,
        "step": step,
        "grad_step": algo.grad_step,
        "rng": rng_state(),
        "model": model_name,
        **extra,
    }
    model_tmp, state_tmp = folder / f".{model_name}.tmp", folder / f".{state_name}.tmp"
    try:
        folder.mkdir(exist_ok=True)
        algo.save_model(str(model_tmp))
        os.replace(model_tmp, folder / model_name)
        torch.save(state, state_tmp)
        os.replace(state_tmp, folder / state_name)
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as RuntimeError
        for tmp in (model_tmp, state_tmp):
            tmp.unlink(missing_ok=True)
        raise RunWriteError(folder / state_name, exc) from exc
    for old_step in checkpoint_steps(run_dir)[KEEP_CHECKPOINTS:]:
        (folder / f"state_step{old_step}.pt").unlink(missing_ok=True)
        (folder / f"model_step{old_step}.pt").unlink(missing_ok=True)


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the checkpoints in a run directory, newest first."""
    folder = run_dir / CHECKPOINT_DIR
    names = (_STATE_NAME.fullmatch(p.name) for p in folder.glob("state_step*.pt"))
    return sorted((int(m.group(1)) for m in names if m), reverse=True)


def load_checkpoint(
    run_dir: Path, algo: Any, warn: Callable[[str], None] = print
) -> dict[str, Any] | None:
    """The newest readable checkpoint, loaded into `algo`; None if there is none.

    An unreadable one (truncated, corrupt) is reported in one line and the one before it is
    used; when none is readable, RunError says so.
    """
    folder = run_dir / CHECKPOINT_DIR
    steps = checkpoint_steps(run_dir)
    for i, step in enumerate(steps):
        path = folder / f"state_step{step}.pt"
        try:
            state = torch.load(path, weights_only=False)
            algo.load_model(str(folder / state["model"]))
        except Exception as exc:  # any damage: bad zip, short file, missing model, bad pickle
            reason = " ".join(str(exc).split())[:120] or type(exc).__name__
            if i + 1 == len(steps):
                kept = "no earlier checkpoint is kept" if i == 0 else "nor is any earlier one"
                raise RunError(
                    f"checkpoint {path} is unreadable ({reason}) and {kept}; "
                    "--overwrite starts the run again"
                ) from None
            warn(
                f"samrl: checkpoint {path} is unreadable ({reason}); resuming from the one "
                f"of step {steps[i + 1]}"
            )
            continue
        algo.set_grad_step(state["grad_step"])
        return state
    return None
