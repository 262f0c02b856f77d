"""One training run: dataset + algorithm + SAM engine + epoch loop + run directory."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import platform
import random
import sys
import time
from pathlib import Path
from typing import IO, Any

import d3rlpy
import numpy as np
import torch
from d3rlpy.logging import D3RLPyLogger
from d3rlpy.preprocessing import MinMaxActionScaler
from tqdm import tqdm

import samrl
from samrl.algos import algo_facts, build_for_training
from samrl.build import algo_config
from samrl.config import Config, TrainSection
from samrl.errors import RunError, SamrlError
from samrl.evaluation import forked_rng, held_out_metrics, rollout_returns
from samrl.extensions import TrainingHooks, training_hooks
from samrl.loop import EpochProgress, next_batch, train_steps
from samrl.progress import is_terminal
from samrl.rundir import (
    D3RLPY_LOG_DIR,
    EVAL_FILE,
    HESSIAN_FILE,
    LOSS_FILE,
    SHARPNESS_FILE,
    RunDir,
    RunWriteError,
    is_disk_error,
    now,
    set_rng_state,
)
from samrl.sam import install
from samrl.sampling import Sampler
from samrl.stopping import StopRequest, stop_on_signals
from samrl.tables import SHARPNESS_SUFFIXES, CsvTable, truncate_epoch_rows
from samrl.threads import RunThreads, threads_for_run
from samrl.trackers import adapter_factory

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


@dataclasses.dataclass(frozen=True)
class RunResult:
    run_dir: Path
    status: str  # completed | diverged | failed | interrupted | skipped
    message: str
    steps_done: int
    signal: str = ""  # interrupted: the signal that stopped it (SIGINT, SIGTERM, SIGUSR2)
    epochs_done: int = 0


def is_sharpness_metric(name: str) -> bool:
    return name.endswith(SHARPNESS_SUFFIXES)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    d3rlpy.seed(seed)


def versions(device: str) -> dict[str, str]:
    return {
        "version": samrl.__version__,
        "d3rlpy": d3rlpy.__version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "device": device,
    }


def prepare_run_dir(config: Config, *, resume: bool, overwrite: bool) -> str:
    """'new', 'resume' or 'done'; raises RunError when the directory may not be touched."""
    run = RunDir(config.run_dir)
    run_dir = run.path
    if run.is_empty():
        return "new"
    check_run_dir(run)
    if overwrite:
        run.clear()  # not the lock file this process holds
        return "new"
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
    return "done" if run.read_status()["status"] == "completed" else "resume"


def check_run_dir(run: RunDir) -> None:
    """Refuse a non-empty directory that is not a samrl run (before anything is put in it)."""
    if not run.is_empty() and not run.is_run():
        raise RunError(
            f"{run.path} exists and is not a samrl run directory; choose another "
            "output.dir or output.run_id"
        )


class _Tables:
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
            k: v
            for k, v in metrics.items()
            if not is_sharpness_metric(k) and k not in self.eval_columns
        }
        sharp = {k: v for k, v in metrics.items() if is_sharpness_metric(k)}
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


def run_training(
    config: Config,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stream: IO[str] | None = None,
) -> RunResult:
    """Train one config into its run directory; never raises for a failing run after start.

    User errors found before training starts (bad run directory, dataset problems) raise
    SamrlError; anything that goes wrong during training is recorded as status 'failed'.
    """
    stream = stream or sys.stderr
    run = RunDir(config.run_dir)
    check_run_dir(run)
    with run.lock(), stop_on_signals() as stop:
        return _run_locked(config, resume, overwrite, progress, stream, stop)


def _run_locked(
    config: Config,
    resume: bool,
    overwrite: bool,
    progress: bool,
    stream: IO[str],
    stop: StopRequest,
) -> RunResult:
    # Not a terminal (a log file, a pipe): no carriage-return bars, one line per epoch instead.
    lines = progress and not is_terminal(stream)
    progress = progress and not lines
    run = RunDir(config.run_dir)
    run_dir = run.path
    state = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    if state == "done":
        return RunResult(run_dir, "skipped", f"{run_dir} is already completed", run.steps_done())
    from samrl.data import load_dataset

    ds_cfg, train_cfg = config.dataset, config.train
    dataset = load_dataset(
        ds_cfg.name,
        size=ds_cfg.size,
        seed=ds_cfg.seed,
        test_fraction=ds_cfg.test_fraction,
        progress=progress,
        corruption=ds_cfg.corruption,
    )
    resolved = config.to_dict()
    resolved["samrl"] = {
        **versions(train_cfg.device),
        "run_id": config.run_id,
        "config_hash": config.result_hash(),
        "notes": list(dataset.info.notes),
    }
    if dataset.corruption is not None:  # its cache file and attacker (samrl/data/corruption.py)
        resolved["samrl"]["corruption"] = dataset.corruption
    previous = run.read_status() if state == "resume" else {}
    # Wall time accumulates over resumed sessions.
    clock = _Clock(time.time(), float(previous.get("wall_time_s") or 0.0))
    try:
        run.write_config(resolved)
        run.write_status(
            status="running",
            started_at=previous.get("started_at", now()),
            ended_at=None,
            error=None,
            n_steps=train_cfg.n_steps,
            steps_done=previous.get("steps_done", 0),
            epochs_done=previous.get("epochs_done", 0),
            wall_time_s=clock.total(),
        )
    except OSError as exc:
        raise RunWriteError(getattr(exc, "filename", None) or run_dir, exc) from exc
    try:
        # process-wide; restored after the run
        with threads_for_run(train_cfg.threads) as run_threads:
            return _train(
                config,
                resolved,
                dataset,
                run,
                state == "resume",
                progress,
                stream,
                clock,
                stop,
                lines,
                run_threads,
            )
    except KeyboardInterrupt:  # Ctrl-C twice: stopped mid-step, the last checkpoint stands
        _finish(run, clock, "interrupted", "interrupted (SIGINT twice, mid-step)")
        raise
    except SamrlError as exc:  # disk full, unreadable checkpoint: resumable once fixed
        _finish(run, clock, "interrupted", f"{exc.kind}: {exc}")
        raise
    except Exception as exc:  # a failing run is recorded, never propagated to a sweep
        if is_disk_error(exc):
            error = RunWriteError(getattr(exc, "filename", None) or run_dir, exc)
            _finish(run, clock, "interrupted", f"{error.kind}: {error}")
            raise error from exc
        message = f"{type(exc).__name__}: {exc}"
        _finish(run, clock, "failed", message)
        return RunResult(run_dir, "failed", message, run.steps_done())


EPOCH_LINE_METRICS = ("return_mean", "normalized_score")


def epoch_line(
    run_id: str, epoch: int, n_epochs: int, step: int, metrics: dict[str, float], wall: float
) -> str:
    """The one line per epoch printed when output is not a terminal."""
    shown = sorted(k for k in metrics if k == "loss" or k.endswith(("_loss", "_sharpness"))) + [
        k for k in EPOCH_LINE_METRICS if k in metrics
    ]
    values = " ".join(f"{k}={metrics[k]:.4g}" for k in shown)
    return f"{run_id}: epoch {epoch}/{n_epochs} step {step} {values} ({wall:.0f}s)"


@dataclasses.dataclass(frozen=True)
class _Clock:
    started: float
    earlier: float

    def total(self) -> float:
        return round(self.earlier + time.time() - self.started, 3)


def _finish(run: RunDir, clock: _Clock, status: str, error: str | None) -> None:
    """Record how the run ended; on a full disk this may fail too, and the status then stays
    `running`, which resume and sweeps treat as interrupted."""
    with contextlib.suppress(OSError):
        run.write_status(status=status, ended_at=now(), error=error, wall_time_s=clock.total())


def _train(
    config: Config,
    resolved: dict[str, Any],
    dataset: Any,
    run: RunDir,
    resuming: bool,
    progress: bool,
    stream: IO[str],
    clock: _Clock,
    stop: StopRequest,
    lines: bool = False,
    run_threads: RunThreads | None = None,
) -> RunResult:
    from samrl.data import make_eval_env

    train_cfg = config.train
    facts = algo_facts(config.algo.name)
    seed_everything(train_cfg.seed)
    algo_cfg = algo_config(facts, config.algo.params, config.optim)
    eval_env = None
    if dataset.info.env_id is not None and (train_cfg.eval_episodes > 0 or not facts.discrete):
        eval_env = make_eval_env(dataset.info, seed=train_cfg.seed)
    algo_cfg = _with_action_scaler(algo_cfg, eval_env, facts.discrete)
    algo = algo_cfg.create(device=train_cfg.device)
    training_hooks(algo).samrl_prepare(dataset.train, dataset.next_observations)
    build_for_training(algo, dataset.train)
    # d3rlpy's minibatches, bitwise, gathered with array indexing (samrl/sampling.py)
    sampler = Sampler(dataset.train, next_observations=dataset.next_observations)
    adaptive_threads = None
    if run_threads is not None:  # checks copies of the algorithm: before install()
        adaptive_threads = run_threads.decide(
            algo,
            lambda: next_batch(algo, sampler, facts.transformer),
            install,
            on_cpu=str(train_cfg.device) == "cpu",
            shared=(dataset.train,),
            announce=lambda line: print(line, file=stream) if progress or lines else None,
        )
        run.write_status(threads=run_threads.description)
    install(algo)

    if train_cfg.eval_episodes == 0:
        eval_env = None
    run_dir = run.path
    tables = _Tables(run, EVAL_COLUMNS)
    logger = D3RLPyLogger(
        algo=algo,
        adapter_factory=adapter_factory(list(config.output.loggers), run_dir, resolved),
        experiment_name=D3RLPY_LOG_DIR,
        n_steps_per_epoch=train_cfg.n_steps_per_epoch,
        with_timestamp=False,
    )
    n_epochs = math.ceil(train_cfg.n_steps / train_cfg.n_steps_per_epoch)
    epoch, step = 0, 0
    # Metric values of the epoch in progress; a checkpoint taken on a signal mid-epoch
    # carries them, so the resumed epoch's means are those of an uninterrupted run.
    partial = EpochProgress()
    warn = lambda line: print(line, file=stream)  # noqa: E731
    hooks = training_hooks(algo)  # samrl's own algorithms' extras (samrl/extensions.py)
    checkpoint = run.load_checkpoint(algo, warn) if resuming else None
    if checkpoint is None:
        # after install(), so SAM applies to it too; a resumed run has its result checkpointed
        hooks.samrl_pretrain(dataset.train, run_dir=run_dir, progress=progress, stream=stream)
    if resuming:
        if checkpoint is not None:
            epoch, step = checkpoint["epoch"], checkpoint["step"]
            set_rng_state(checkpoint["rng"])
            if "algorithm" in checkpoint:
                hooks.samrl_restore_checkpoint_state(checkpoint["algorithm"])
            partial = EpochProgress.from_dict(checkpoint.get("partial"))
        tables.truncate_after(epoch)
        for path in run.d3rlpy_dir.glob("*.csv"):
            truncate_epoch_rows(path, epoch)
    # Also on resume: trackers (TensorBoard's hparams) need the params before the first commit.
    logger.add_params(algo.config.serialize_to_dict())

    bar = tqdm(
        total=train_cfg.n_steps,
        initial=step,
        disable=not progress,
        file=stream,
        desc=f"{config.run_id}",
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    status, message = "completed", ""
    try:
        while epoch < n_epochs:
            epoch += 1
            n = min(train_cfg.n_steps_per_epoch, train_cfg.n_steps - step + partial.steps)
            start = partial.steps
            epoch_metrics = train_steps(
                algo,
                sampler,
                facts.transformer,
                n,
                logger,
                bar,
                partial=partial,
                stop=stop,
                threads=adaptive_threads,
            )
            step += partial.steps - start
            if partial.steps < n:  # a signal: checkpoint this step, with the epoch so far
                epoch -= 1
                extra = {**_algorithm_state(hooks), "partial": partial.to_dict()}
                run.save_checkpoint(algo, epoch, step, extra)
                run.write_status(steps_done=step, epochs_done=epoch)
                _finish(run, clock, "interrupted", f"interrupted by {stop.name} at step {step}")
                message = _interrupted_message(stop.name, step, epoch, n_epochs, run_dir)
                return RunResult(run_dir, "interrupted", message, step, stop.name, epoch)
            partial = EpochProgress()
            bad = sorted(k for k, v in epoch_metrics.items() if not math.isfinite(v))
            if not bad:
                evaluation = _evaluate(algo, dataset, facts, eval_env, train_cfg, epoch)
                for name, value in evaluation.items():
                    logger.add_metric(name, value)
            hessian = config.analysis.hessian
            if hessian is not None and not bad and epoch % hessian.every_epochs == 0:
                from samrl.analysis.during_training import hessian_row

                with forked_rng():
                    row = hessian_row(algo, dataset.train, hessian, seed=train_cfg.seed)
                for name, value in row.items():
                    logger.add_metric(f"{HESSIAN_PREFIX}{name}", value)
            committed = logger.commit(epoch, step)
            tables.write(epoch, step, committed)
            if lines:
                print(
                    epoch_line(config.run_id, epoch, n_epochs, step, committed, clock.total()),
                    file=stream,
                    flush=True,
                )
            if epoch % train_cfg.save_interval == 0 or epoch == n_epochs:
                logger.save_model(step, algo)
            run.save_checkpoint(algo, epoch, step, _algorithm_state(hooks))
            run.write_status(steps_done=step, epochs_done=epoch, wall_time_s=clock.total())
            if bad:
                status = "diverged"
                message = f"non-finite {', '.join(bad)} in epoch {epoch} (step {step})"
                break
    finally:
        bar.close()
        logger.close()
    _finish(run, clock, status, message or None)
    return RunResult(run_dir, status, message, step, epochs_done=epoch)


def _interrupted_message(
    signal_name: str, step: int, epoch: int, n_epochs: int, run_dir: Path
) -> str:
    safe = f"epoch {epoch} is the last complete one" if epoch else "no epoch is complete yet"
    return (
        f"interrupted by {signal_name} at step {step} (epoch {epoch + 1} of {n_epochs} in "
        f"progress, checkpointed at that step); {safe}, its rows are in {run_dir}"
    )


def _evaluate(
    algo: Any, dataset: Any, facts: Any, env: Any, train_cfg: TrainSection, epoch: int
) -> dict[str, float]:
    """Rollout returns (and normalized score) and held-out TD metrics for this epoch."""
    from samrl.data import normalized_score

    out: dict[str, float] = {}
    if env is not None:
        returns = rollout_returns(
            algo,
            env,
            train_cfg.eval_episodes,
            seed=10_000 * epoch,
            transformer=facts.transformer,
            discrete=facts.discrete,
            target_return=_target_return(dataset),
        )
        out["return_mean"] = float(np.mean(returns))
        out["return_std"] = float(np.std(returns))
        score = normalized_score(out["return_mean"], dataset.info)
        if score is not None:
            out["normalized_score"] = score
    if dataset.test_episodes and not facts.transformer:
        out.update(
            held_out_metrics(algo, dataset.test_episodes, dataset.train, discrete=facts.discrete)
        )
    return out


def _algorithm_state(hooks: TrainingHooks) -> dict[str, Any]:
    """State an algorithm keeps outside its modules (COMBO's model buffer), for --resume."""
    state = hooks.samrl_checkpoint_state()
    return {"algorithm": state} if state else {}


def _target_return(dataset: Any) -> float | None:
    """Decision transformers condition on a return: the dataset's best episode return."""
    if dataset.info.ref_max_return is not None:
        return float(dataset.info.ref_max_return)
    returns = [float(np.sum(e.rewards)) for e in dataset.train.episodes]
    return max(returns) if returns else None


def _with_action_scaler(algo_cfg: Any, env: Any, discrete: bool) -> Any:
    """Map the env's action box onto [-1, 1], where d3rlpy's tanh policies act.

    Pendulum's torque lies in [-2, 2]; without a scaler a policy could never use half of it.
    An action_scaler given in algo.params is kept as it is.
    """
    if discrete or env is None or algo_cfg.action_scaler is not None:
        return algo_cfg
    low, high = env.action_space.low, env.action_space.high
    if np.all(low == -1.0) and np.all(high == 1.0):
        return algo_cfg
    scaler = MinMaxActionScaler(minimum=low.astype(np.float32), maximum=high.astype(np.float32))
    return dataclasses.replace(algo_cfg, action_scaler=scaler)
