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
from typing import IO, TYPE_CHECKING, Any

import d3rlpy
import numpy as np
import torch
from d3rlpy.logging import D3RLPyLogger
from d3rlpy.preprocessing import MinMaxActionScaler
from tqdm import tqdm

import samrl
from samrl.algos import AlgoFacts, algo_facts, build_for_training
from samrl.analysis.during_training import hessian_row
from samrl.config import Config
from samrl.config.build import algo_config
from samrl.config.sections import RUN_RECORD
from samrl.data import load_dataset, make_eval_env, normalized_score
from samrl.data.provenance import provenance
from samrl.errors import SamrlError
from samrl.metrics import is_headline
from samrl.progress import is_terminal
from samrl.run.csv_writer import (
    EVAL_COLUMNS,
    HESSIAN_PREFIX,
    RunTables,
    truncate_epoch_rows,
)
from samrl.run.evaluation import forked_rng, held_out_metrics, rollout_returns
from samrl.run.hooks import TrainingHooks, training_hooks
from samrl.run.loop import EpochProgress, next_batch, train_steps
from samrl.run.sampling import Sampler
from samrl.run.stopping import StopRequest, stop_on_signals
from samrl.run.threads import AdaptiveThreads, RunThreads, numerics_record, threads_for_run
from samrl.run.trackers import adapter_factory
from samrl.rundir import (
    D3RLPY_LOG_DIR,
    RunDir,
    RunWriteError,
    check_run_dir,
    is_disk_error,
    now,
    prepare_run_dir,
    set_rng_state,
)
from samrl.sam import install
from samrl.status import Preparation, RunStatus

if TYPE_CHECKING:  # samrl.data imports gymnasium: loaded when a run loads its dataset
    from samrl.data.info import LoadedDataset


@dataclasses.dataclass(frozen=True)
class RunResult:
    run_dir: Path
    status: RunStatus  # completed | diverged | failed | interrupted | skipped
    message: str
    steps_done: int
    signal: str = ""  # interrupted: the signal that stopped it (SIGINT, SIGTERM, SIGUSR2)
    epochs_done: int = 0


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
    SamrlError; anything that goes wrong during training is recorded as a failed run.
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
    if state == Preparation.DONE:
        return RunResult(
            run_dir, RunStatus.SKIPPED, f"{run_dir} is already completed", run.steps_done()
        )

    ds_cfg = config.dataset
    dataset = load_dataset(
        ds_cfg.name,
        size=ds_cfg.size,
        seed=ds_cfg.seed,
        test_fraction=ds_cfg.test_fraction,
        progress=progress,
        sha256=ds_cfg.sha256,
        corruption=ds_cfg.corruption,
    )
    resolved, clock = _record_start(config, run, dataset, state)
    try:
        # process-wide; restored after the run
        with threads_for_run(config.train.threads) as run_threads:
            out = _Output(stream, bars=progress, lines=lines)
            resuming = state == Preparation.RESUME
            return _train(
                config,
                resolved,
                dataset,
                run,
                resuming=resuming,
                out=out,
                clock=clock,
                stop=stop,
                run_threads=run_threads,
            )
    except KeyboardInterrupt:  # Ctrl-C twice: stopped mid-step, the last checkpoint stands
        _finish(run, clock, RunStatus.INTERRUPTED, "interrupted (SIGINT twice, mid-step)")
        raise
    except SamrlError as exc:  # disk full, unreadable checkpoint: resumable once fixed
        _finish(run, clock, RunStatus.INTERRUPTED, f"{exc.kind}: {exc}")
        raise
    except Exception as exc:  # a failing run is recorded, never propagated to a sweep
        if is_disk_error(exc):
            error = RunWriteError(getattr(exc, "filename", None) or run_dir, exc)
            _finish(run, clock, RunStatus.INTERRUPTED, f"{error.kind}: {error}")
            raise error from exc
        message = f"{type(exc).__name__}: {exc}"
        _finish(run, clock, RunStatus.FAILED, message)
        return RunResult(run_dir, RunStatus.FAILED, message, run.steps_done())


def _record_start(
    config: Config, run: RunDir, dataset: LoadedDataset, state: Preparation
) -> tuple[dict[str, Any], _Clock]:
    """config.yaml (the resolved config, versions, dataset notes, the dataset file and the
    corruption's record) and status.json `running`;
    (that config, the run's clock: wall time accumulates over resumed sessions)."""
    resolved = config.to_dict()
    # The record names no machine path: the run is where its config.yaml is, and a shipped
    # record re-run elsewhere must not write into the first machine's directory tree.
    resolved["output"].pop("run_dir", None)
    resolved[RUN_RECORD] = {
        **versions(config.train.device),
        # the machine's part in the last bits (samrl/run/threads.py); the count: status.json threads
        "numerics": numerics_record(),
        "run_id": config.run_id,
        "config_hash": config.result_hash(),
        "notes": list(dataset.info.notes),
    }
    # which bytes the run trained on (hashed once per file: samrl/data/provenance.py)
    dataset_file = provenance(config.dataset.name, dataset.path)
    if dataset_file is not None:
        resolved[RUN_RECORD]["dataset_file"] = dataset_file
    if dataset.corruption is not None:  # its cache file and attacker (samrl/data/corruption.py)
        resolved[RUN_RECORD]["corruption"] = dataset.corruption
    previous = run.read_status() if state == Preparation.RESUME else {}
    clock = _Clock(time.time(), float(previous.get("wall_time_s") or 0.0))
    try:
        run.write_config(resolved)
        run.write_status(
            status=RunStatus.RUNNING,
            started_at=previous.get("started_at", now()),
            ended_at=None,
            error=None,
            n_steps=config.train.n_steps,
            steps_done=previous.get("steps_done", 0),
            epochs_done=previous.get("epochs_done", 0),
            wall_time_s=clock.total(),
        )
    except OSError as exc:
        raise RunWriteError(getattr(exc, "filename", None) or run.path, exc) from exc
    return resolved, clock


EPOCH_LINE_METRICS = ("return_mean", "normalized_score")


def epoch_line(
    run_id: str, epoch: int, n_epochs: int, step: int, metrics: dict[str, float], wall: float
) -> str:
    """The one line per epoch printed when output is not a terminal."""
    shown = sorted(k for k in metrics if is_headline(k)) + [
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


def _finish(run: RunDir, clock: _Clock, status: RunStatus, error: str | None) -> None:
    """Record how the run ended; on a full disk this may fail too, and the status then stays
    `running`, which resume and sweeps treat as interrupted."""
    with contextlib.suppress(OSError):
        run.write_status(status=status, ended_at=now(), error=error, wall_time_s=clock.total())


@dataclasses.dataclass(frozen=True)
class _Output:
    """Where a run reports: `stream`, with progress bars (a terminal) or one line per epoch (a
    log file, a pipe), or quietly (neither)."""

    stream: IO[str]
    bars: bool
    lines: bool

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


@dataclasses.dataclass(frozen=True)
class _Live:
    """A run's working parts, made by `_build` and used by every later stage."""

    config: Config
    run: RunDir
    dataset: LoadedDataset
    facts: AlgoFacts
    algo: Any  # the d3rlpy algorithm, SAM installed
    sampler: Sampler
    eval_env: Any  # None: no rollouts (no environment, or eval_episodes 0)
    threads: AdaptiveThreads | None
    hooks: TrainingHooks
    out: _Output
    clock: _Clock

    @property
    def n_epochs(self) -> int:
        train = self.config.train
        return math.ceil(train.n_steps / train.n_steps_per_epoch)


@dataclasses.dataclass
class _Position:
    """Where training stands: the last complete epoch, the step, and the epoch in progress's
    metric values (a checkpoint taken on a signal mid-epoch carries them, so the resumed
    epoch's means are those of an uninterrupted run)."""

    epoch: int = 0
    step: int = 0
    partial: EpochProgress = dataclasses.field(default_factory=EpochProgress)


def _train(
    config: Config,
    resolved: dict[str, Any],
    dataset: LoadedDataset,
    run: RunDir,
    *,
    resuming: bool,
    out: _Output,
    clock: _Clock,
    stop: StopRequest,
    run_threads: RunThreads | None = None,
) -> RunResult:
    """One run's stages, in order: build the algorithm (SAM installed), open its logs,
    restore its checkpoint (or pretrain), then train epoch by epoch."""
    live = _build(config, dataset, run, out, clock, run_threads)
    tables = RunTables(run, EVAL_COLUMNS)
    logger = D3RLPyLogger(
        algo=live.algo,
        adapter_factory=adapter_factory(list(config.output.loggers), run.path, resolved),
        experiment_name=D3RLPY_LOG_DIR,
        n_steps_per_epoch=config.train.n_steps_per_epoch,
        with_timestamp=False,
    )
    position = _restore(live, tables, resuming)
    # Also on resume: trackers (TensorBoard's hparams) need the params before the first commit.
    logger.add_params(live.algo.config.serialize_to_dict())
    return _epochs(live, position, tables, logger, stop)


def _build(
    config: Config,
    dataset: LoadedDataset,
    run: RunDir,
    out: _Output,
    clock: _Clock,
    run_threads: RunThreads | None,
) -> _Live:
    """Seed, the evaluation environment, the algorithm (action scaler, networks built on the
    dataset), the sampler, the thread count (process-wide), then the SAM engine."""

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
    # d3rlpy's minibatches, bitwise, gathered with array indexing (samrl/run/sampling.py)
    sampler = Sampler(dataset.train, next_observations=dataset.next_observations)
    adaptive_threads = None
    if run_threads is not None:  # checks copies of the algorithm: before install()
        adaptive_threads = run_threads.decide(
            algo,
            lambda: next_batch(algo, sampler, facts.transformer),
            install,
            on_cpu=str(train_cfg.device) == "cpu",
            shared=(dataset.train,),
            announce=out.say if out.bars or out.lines else lambda line: None,
        )
        run.write_status(threads=run_threads.description)
    install(algo)
    if train_cfg.eval_episodes == 0:
        eval_env = None
    hooks = training_hooks(algo)  # samrl's own algorithms' extras (samrl/run/hooks.py)
    return _Live(
        config, run, dataset, facts, algo, sampler, eval_env, adaptive_threads, hooks, out, clock
    )


def _restore(live: _Live, tables: RunTables, resuming: bool) -> _Position:
    """Resume: the checkpoint's algorithm, RNG and position, and the tables cut back to its
    epoch. A new run (or a resumed one without a checkpoint yet) pretrains instead."""
    run, out = live.run, live.out
    checkpoint = run.load_checkpoint(live.algo, out.say) if resuming else None
    if checkpoint is None:
        # after install(), so SAM applies to it too; a resumed run has its result checkpointed
        live.hooks.samrl_pretrain(
            live.dataset.train, run_dir=run.path, progress=out.bars, stream=out.stream
        )
    position = _Position()
    if resuming:
        if checkpoint is not None:
            position = _Position(
                checkpoint["epoch"],
                checkpoint["step"],
                EpochProgress.from_dict(checkpoint.get("partial")),
            )
            set_rng_state(checkpoint["rng"])
            if "algorithm" in checkpoint:
                live.hooks.samrl_restore_checkpoint_state(checkpoint["algorithm"])
        tables.truncate_after(position.epoch)
        for path in run.d3rlpy_dir.glob("*.csv"):
            truncate_epoch_rows(path, position.epoch)
    return position


def _epochs(
    live: _Live, at: _Position, tables: RunTables, logger: D3RLPyLogger, stop: StopRequest
) -> RunResult:
    """Train epoch by epoch up to train.n_steps; a non-finite metric ends the run diverged, a
    signal ends it interrupted (checkpointed at that step)."""
    train_cfg = live.config.train
    bar = tqdm(
        total=train_cfg.n_steps,
        initial=at.step,
        disable=not live.out.bars,
        file=live.out.stream,
        desc=f"{live.config.run_id}",
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    status, message = RunStatus.COMPLETED, ""
    try:
        while at.epoch < live.n_epochs:
            at.epoch += 1
            n = min(train_cfg.n_steps_per_epoch, train_cfg.n_steps - at.step + at.partial.steps)
            start = at.partial.steps
            epoch_metrics = train_steps(
                live.algo,
                live.sampler,
                live.facts.transformer,
                n,
                logger,
                bar,
                partial=at.partial,
                stop=stop,
                threads=live.threads,
            )
            at.step += at.partial.steps - start
            if at.partial.steps < n:  # a signal: checkpoint this step, with the epoch so far
                at.epoch -= 1
                return _interrupted(live, at, stop.name)
            at.partial = EpochProgress()
            bad = sorted(k for k, v in epoch_metrics.items() if not math.isfinite(v))
            _end_epoch(live, at, tables, logger, diverged=bool(bad))
            if bad:
                status = RunStatus.DIVERGED
                message = f"non-finite {', '.join(bad)} in epoch {at.epoch} (step {at.step})"
                break
    finally:
        bar.close()
        logger.close()
    _finish(live.run, live.clock, status, message or None)
    return RunResult(live.run.path, status, message, at.step, epochs_done=at.epoch)


def _end_epoch(
    live: _Live, at: _Position, tables: RunTables, logger: D3RLPyLogger, *, diverged: bool
) -> None:
    """An epoch's end: evaluation and the Hessian (unless it diverged), its rows in the
    tables, the epoch line, the model file and the checkpoint."""
    config, run = live.config, live.run
    if not diverged:
        evaluation = _evaluate(live, at.epoch)
        for name, value in evaluation.items():
            logger.add_metric(name, value)
    hessian = config.analysis.hessian
    if hessian is not None and not diverged and at.epoch % hessian.every_epochs == 0:
        with forked_rng():
            row = hessian_row(live.algo, live.dataset.train, hessian, seed=config.train.seed)
        for name, value in row.items():
            logger.add_metric(f"{HESSIAN_PREFIX}{name}", value)
    committed = logger.commit(at.epoch, at.step)
    tables.write(at.epoch, at.step, committed)
    if live.out.lines:
        wall = live.clock.total()
        live.out.say(epoch_line(config.run_id, at.epoch, live.n_epochs, at.step, committed, wall))
    if at.epoch % config.train.save_interval == 0 or at.epoch == live.n_epochs:
        logger.save_model(at.step, live.algo)
    run.save_checkpoint(live.algo, at.epoch, at.step, _algorithm_state(live.hooks))
    run.write_status(steps_done=at.step, epochs_done=at.epoch, wall_time_s=live.clock.total())


def _interrupted(live: _Live, at: _Position, signal_name: str) -> RunResult:
    """Stopped by a signal mid-epoch: checkpoint this step with the epoch so far."""
    run = live.run
    extra = {**_algorithm_state(live.hooks), "partial": at.partial.to_dict()}
    run.save_checkpoint(live.algo, at.epoch, at.step, extra)
    run.write_status(steps_done=at.step, epochs_done=at.epoch)
    error = f"interrupted by {signal_name} at step {at.step}"
    _finish(run, live.clock, RunStatus.INTERRUPTED, error)
    message = _interrupted_message(signal_name, at.step, at.epoch, live.n_epochs, run.path)
    return RunResult(run.path, RunStatus.INTERRUPTED, message, at.step, signal_name, at.epoch)


def _interrupted_message(
    signal_name: str, step: int, epoch: int, n_epochs: int, run_dir: Path
) -> str:
    safe = f"epoch {epoch} is the last complete one" if epoch else "no epoch is complete yet"
    return (
        f"interrupted by {signal_name} at step {step} (epoch {epoch + 1} of {n_epochs} in "
        f"progress, checkpointed at that step); {safe}, its rows are in {run_dir}"
    )


def _evaluate(live: _Live, epoch: int) -> dict[str, float]:
    """Rollout returns (and normalized score) and held-out TD metrics for this epoch."""

    algo, dataset, facts, env = live.algo, live.dataset, live.facts, live.eval_env
    out: dict[str, float] = {}
    if env is not None:
        returns = rollout_returns(
            algo,
            env,
            live.config.train.eval_episodes,
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
