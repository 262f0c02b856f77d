"""The run directory and the sweep directory: their layout, and every read and write of the
files samrl keeps in them (docs/run-directory.md is the contract).

Nothing else in samrl spells a file name of these directories or writes one of their files
by hand: `train.py` writes a run through `RunDir`, the sweep writes through `SweepDir`, and
`samrl.results` / `samrl.analysis` read through both. This module imports neither torch nor
pandas at module level (the checkpoint methods import torch when called), so readers stay
light.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import fcntl
import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from samrl.config.sections import RUN_RECORD, Config
from samrl.config.yamlio import dump_yaml
from samrl.errors import RunError
from samrl.safeload import (
    UnsafeFileError,
    check_torch_bytes,
    decode_state,
    encode_state,
    load_torch,
)
from samrl.status import Preparation, RunStatus

# ---------------------------------------------------------------- a run directory's files
CONFIG_FILE = "config.yaml"
STATUS_FILE = "status.json"
LOSS_FILE = "loss.csv"
SHARPNESS_FILE = "sharpness.csv"
EVAL_FILE = "eval.csv"
HESSIAN_FILE = "hessian.csv"
#: The per-epoch tables a run writes, in the order the summary line names them.
TABLE_FILES = (LOSS_FILE, SHARPNESS_FILE, EVAL_FILE, HESSIAN_FILE)
#: The tables whose columns are plottable metrics (hessian.csv has its own plots).
METRIC_FILES = (LOSS_FILE, SHARPNESS_FILE, EVAL_FILE)
#: Post-hoc analysis of saved models (`samrl hessian`, `samrl sharpness`).
POSTHOC_HESSIAN_FILE = "hessian_posthoc.csv"
POSTHOC_SHARPNESS_FILE = "sharpness_posthoc.csv"
#: d3rlpy's FileAdapter folder: its per-metric CSVs, params.json and model_<step>.d3 files.
D3RLPY_LOG_DIR = "d3rlpy"
CHECKPOINT_DIR = "checkpoint"
#: Resume checkpoints kept: the newest, and one before it in case the newest is unreadable.
KEEP_CHECKPOINTS = 2
_STATE_NAME = re.compile(r"state_step(\d+)\.pt")
#: flock'ed by the process training the run (never deleted; not part of the results).
RUN_LOCK_FILE = ".lock"
#: Files whose presence makes a directory a samrl run directory.
RUN_MARKERS = (STATUS_FILE, CONFIG_FILE)

# ---------------------------------------------------------------- a sweep directory's files
SWEEP_FILE = "sweep.json"
SWEEP_RUNS_DIR = "runs"
SWEEP_CONFIGS_DIR = "configs"
SWEEP_LOGS_DIR = "logs"
SWEEP_LOCK_FILE = ".lock"
SLURM_DIR = "slurm"
SUMMARY_FILE = "summary.csv"
AGGREGATE_FILE = "aggregate.csv"
REPORT_FILE = "report.md"
#: Paper tables (samrl.results.paper): long-form CSV, Markdown and LaTeX.
SCORE_FILES = ("scores.csv", "scores.md", "scores.tex")
#: The Adam baseline level of each algorithm and dataset (samrl.results.baselines).
BASELINES_FILE = "baselines.csv"
#: Spearman correlation of sharpness and score over runs (samrl.results.rank_correlation).
RANK_CORRELATION_FILE = "rank_correlation.csv"
#: The seed table (samrl.results.seed_table): CSV, Markdown and LaTeX.
SEED_TABLE_FILES = ("seed_table.csv", "seed_table.md", "seed_table.tex")
CORRUPTION_TABLE_FILES = ("corruption_table.csv", "corruption_table.md")


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


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block ends
    without an exception (readers see the old file or the whole new one, never half of one).

    The temporary name carries the process id, so two processes writing the same file do not
    trample each other's temporary file.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write text or bytes to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as temporary:
        if isinstance(data, bytes):
            temporary.write_bytes(data)
        else:
            temporary.write_text(data)


def write_csv_atomic(frame: Any, path: Path) -> None:
    """A pandas DataFrame as CSV without its index, atomically (see `atomic_path`)."""
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML mapping, or {} when the file is missing, unreadable or not a mapping.

    Plain YAML 1.1 (safe_load), not samrl.config's reader: samrl before dump_yaml wrote hashes
    such as 955991399544e088 unquoted, which that reader would take for a float."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


# ---------------------------------------------------------------- run directory


@dataclasses.dataclass(frozen=True)
class _Directory:
    """A directory samrl owns, named by its path (usable wherever a path is)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


class _Entry:
    """A file or folder of a samrl directory, by name: `RunDir(p).config_file` is
    `p / CONFIG_FILE`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, directory: _Directory, owner: type | None = None) -> Path:
        return directory.path / self.name


@dataclasses.dataclass(frozen=True)
class RunDir(_Directory):
    """One run's directory: `<output.dir>/<name>/<run_id>/`, or `<sweep>/runs/<run_id>/`."""

    def file(self, name: str) -> Path:
        return self.path / name

    config_file = _Entry(CONFIG_FILE)
    status_file = _Entry(STATUS_FILE)
    d3rlpy_dir = _Entry(D3RLPY_LOG_DIR)
    checkpoint_dir = _Entry(CHECKPOINT_DIR)

    # ---- what the directory holds

    def files(self) -> list[Path]:
        """What the directory holds, without its lock file."""
        if not self.path.is_dir():
            return []
        return [p for p in self.path.iterdir() if p.name != RUN_LOCK_FILE]

    def is_empty(self) -> bool:
        """No directory, or one holding nothing but its lock: a run may start here."""
        return not self.files()

    def create(self) -> None:
        """Make the directory (and its parents); any OS error is a RunWriteError naming the
        path that is in the way (an existing file, a read-only or missing place)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
            if blocker is not None or isinstance(exc, FileExistsError):
                blocker = blocker or self.path
                raise RunError(
                    f"cannot create the run directory {self.path}: {blocker} is a file, not a "
                    "directory; choose another output.dir"
                ) from None
            raise RunWriteError(exc.filename or self.path, exc) from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this process: a second `samrl train` on it refuses.

        An flock on `<run>/.lock`: the kernel releases it when the process ends, however it
        ends, so a crash never leaves a stale lock. The file stays (deleting it would let two
        processes lock two different files).
        """
        self.create()
        path = self.path / RUN_LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunWriteError(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunError(
                f"{self.path} is in use by {holder}; wait for it to end or stop it first"
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

    def is_locked(self) -> bool:
        """Whether a live process holds the run now. A `running` status that nobody holds is a
        run that was killed without a chance to record it (SIGKILL, OOM, node failure)."""
        try:
            fd = os.open(self.path / RUN_LOCK_FILE, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also drops this probe's own lock
        return False

    def clear(self) -> None:
        """Delete what the run wrote (--overwrite), not the lock this process may hold."""
        import shutil

        for path in self.files():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def is_run(self) -> bool:
        """Whether samrl wrote this directory (it holds status.json or config.yaml)."""
        return any((self.path / marker).is_file() for marker in RUN_MARKERS)

    def model_files(self) -> dict[int, Path]:
        """Step -> d3rlpy's saved model `d3rlpy/model_<step>.d3`."""
        found: dict[int, Path] = {}
        for path in self.d3rlpy_dir.glob("model_*.d3"):
            step = path.stem.removeprefix("model_")
            if step.isdigit():
                found[int(step)] = path
        return dict(sorted(found.items()))

    # ---- config.yaml

    def read_config(self) -> dict[str, Any]:
        """The resolved config the run wrote, or {} when it is missing or unreadable."""
        return read_yaml_mapping(self.config_file)

    def write_config(self, data: dict[str, Any]) -> None:
        atomic_write(self.config_file, dump_yaml(data))

    def saved_hash(self) -> str | None:
        """The config hash the run was made with (config.yaml's samrl.config_hash)."""
        meta = self.read_config().get(RUN_RECORD)
        return meta.get("config_hash") if isinstance(meta, dict) else None

    # ---- status.json

    def read_status(self) -> dict[str, Any]:
        """status.json as a dict; always has a `status`.

        Status `pending` when the run has not written one yet; `unknown`, with an `error`, when
        it cannot be read (a crash mid-write cannot cause this: the file is replaced atomically).
        """
        if not self.status_file.is_file():
            return {"status": RunStatus.PENDING}
        try:
            loaded = json.loads(self.status_file.read_text())
        except (json.JSONDecodeError, OSError, UnicodeDecodeError):
            return {"status": RunStatus.UNKNOWN, "error": f"unreadable {STATUS_FILE}"}
        if not isinstance(loaded, dict):
            return {"status": RunStatus.UNKNOWN, "error": f"unreadable {STATUS_FILE}"}
        loaded.setdefault("status", RunStatus.UNKNOWN)
        return loaded

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Update status.json with `fields` (the other fields are kept)."""
        status = self.read_status() if self.status_file.is_file() else {}
        if status.get("status") == RunStatus.UNKNOWN:
            status = {}
        status.update(fields)
        atomic_write(self.status_file, json.dumps(status, indent=2) + "\n")
        return status

    def steps_done(self) -> int:
        return int(self.read_status().get("steps_done") or 0)

    # ---- resume checkpoints

    def save_checkpoint(self, algo: Any, epoch: int, step: int, extra: dict[str, Any]) -> None:
        """Model + optimizer states (d3rlpy's save_model), RNG states and counters at `step`
        (`epoch` epochs complete; `extra` may hold the epoch in progress, see train.py).

        Files are written under temporary names and renamed, the state file last, so a crash
        or a full disk at any point leaves the earlier checkpoints complete; the newest
        KEEP_CHECKPOINTS are kept.
        """
        import torch

        folder = self.checkpoint_dir
        model_name, state_name = f"model_step{step}.pt", f"state_step{step}.pt"
        # Only what torch's weights-only load reads back (samrl/safeload.py): a run directory
        # may come from someone else, and resuming it must not run anything in it. Refused
        # here, before any file is written, when an extension's state holds something else.
        state = encode_state(
            {
                "epoch": epoch,
                "step": step,
                "grad_step": algo.grad_step,
                "rng": rng_state(),
                "model": model_name,
                **extra,
            },
            "checkpoint state",
        )
        try:
            folder.mkdir(exist_ok=True)
            with atomic_path(folder / model_name) as temporary:
                algo.save_model(str(temporary))
            with atomic_path(folder / state_name) as temporary:
                torch.save(state, temporary)
        except (OSError, RuntimeError) as exc:  # torch reports a failed write as RuntimeError
            raise RunWriteError(folder / state_name, exc) from exc
        for old_step in self.checkpoint_steps()[KEEP_CHECKPOINTS:]:
            (folder / f"state_step{old_step}.pt").unlink(missing_ok=True)
            (folder / f"model_step{old_step}.pt").unlink(missing_ok=True)

    def checkpoint_steps(self) -> list[int]:
        """Steps of the checkpoints in the run directory, newest first."""
        names = (_STATE_NAME.fullmatch(p.name) for p in self.checkpoint_dir.glob("state_step*.pt"))
        return sorted((int(m.group(1)) for m in names if m), reverse=True)

    def load_checkpoint(
        self, algo: Any, warn: Callable[[str], None] = print
    ) -> dict[str, Any] | None:
        """The newest readable checkpoint, loaded into `algo`; None if there is none.

        An unreadable one (truncated, corrupt, or holding a pickled object that the safe load
        refuses: nothing in it runs) is reported in one line and the one before it is used;
        when none is readable, RunError says so.
        """

        folder = self.checkpoint_dir
        steps = self.checkpoint_steps()
        for i, step in enumerate(steps):
            path = folder / f"state_step{step}.pt"
            model = folder / f"model_step{step}.pt"
            try:
                state = decode_state(load_torch(path))
                model = folder / Path(str(state["model"])).name  # never a path outside
                check_torch_bytes(model, model.read_bytes())  # before d3rlpy's torch.load
                algo.load_model(str(model))
            except Exception as exc:  # any damage: bad zip, short file, missing model, pickle
                if isinstance(exc, UnsafeFileError):
                    reason = exc.reason if exc.path == path else f"{model.name}: {exc.reason}"
                else:
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


def rng_state() -> dict[str, Any]:
    """Every process-wide RNG a run draws from (python, numpy, torch CPU and CUDA)."""
    from samrl.rng import ProcessRngState  # torch loads only for a checkpoint

    return ProcessRngState.capture().as_dict()


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`'s result (process-wide: the run owns the process's RNGs)."""
    from samrl.rng import ProcessRngState  # torch loads only for a checkpoint

    ProcessRngState.from_dict(state).restore()


# ---------------------------------------------------------------- run-directory policy


def prepare_run_dir(config: Config, *, resume: bool, overwrite: bool) -> Preparation:
    """Start afresh, resume, or nothing to do; RunError when the directory may not be touched."""
    run = RunDir(config.run_dir)
    run_dir = run.path
    if run.is_empty():
        return Preparation.NEW
    check_run_dir(run)
    if overwrite:
        run.clear()  # not the lock file this process holds
        return Preparation.NEW
    if not resume:
        raise RunError(
            f"{run_dir} already exists; pass --resume to continue it or --overwrite to start again"
        )
    saved = run.saved_hash()
    if saved is not None and saved == config.legacy_result_hash():
        raise RunError(
            f"{run_dir} was made before samrl named single networks (its columns say loss_*, "
            "this version writes the network's name); it cannot be resumed: use --overwrite "
            "or another output.run_id"
        )
    if saved is not None and saved != config.result_hash():
        raise RunError(
            f"{run_dir} was made with a different config (hash {saved} != "
            f"{config.result_hash()}); use another output.run_id or --overwrite"
        )
    done = run.read_status()["status"] == RunStatus.COMPLETED
    return Preparation.DONE if done else Preparation.RESUME


def check_run_dir(run: RunDir) -> None:
    """Refuse a non-empty directory that is not a samrl run (before anything is put in it)."""
    if not run.is_empty() and not run.is_run():
        raise RunError(
            f"{run.path} exists and is not a samrl run directory; choose another "
            "output.dir or output.run_id"
        )


# ---------------------------------------------------------------- sweep directory


@dataclasses.dataclass(frozen=True)
class SweepDir(_Directory):
    """A sweep's directory: `<out>/<name>/` with sweep.json, configs/, logs/, runs/."""

    record_file = _Entry(SWEEP_FILE)
    summary_file = _Entry(SUMMARY_FILE)
    aggregate_file = _Entry(AGGREGATE_FILE)
    report_file = _Entry(REPORT_FILE)
    lock_file = _Entry(SWEEP_LOCK_FILE)
    slurm_dir = _Entry(SLURM_DIR)

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.path / SWEEP_RUNS_DIR / run_id)

    @staticmethod
    def run_entry(run_id: str) -> str:
        """A run's directory relative to the sweep directory, as sweep.json records it."""
        return f"{SWEEP_RUNS_DIR}/{run_id}"

    def config_file(self, run_id: str) -> Path:
        """The per-run config file the worker trains from (`samrl train --config <this>`)."""
        return self.path / SWEEP_CONFIGS_DIR / f"{run_id}.yaml"

    def log_file(self, run_id: str) -> Path:
        return self.path / SWEEP_LOGS_DIR / f"{run_id}.log"

    def read_record(self) -> dict[str, Any] | None:
        """sweep.json, or None when there is none; RunError when it is not valid JSON."""
        path = self.record_file
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RunError(
                f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                "use --overwrite to start again"
            ) from None
        return record if isinstance(record, dict) else None

    def write(self, record: dict[str, Any], configs: dict[str, dict[str, Any]]) -> None:
        """sweep.json and one config file per run (rewritten each time; idempotent)."""
        (self.path / SWEEP_CONFIGS_DIR).mkdir(parents=True, exist_ok=True)
        (self.path / SWEEP_LOGS_DIR).mkdir(exist_ok=True)
        for run_id, raw in configs.items():
            atomic_write(self.config_file(run_id), dump_yaml(raw))
        atomic_write(self.record_file, json.dumps(record, indent=2, default=str) + "\n")
