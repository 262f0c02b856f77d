"""The environment-free signals of `samrl select`, measured on each saved checkpoint of a run.

Every value comes from code that already exists, never from a copy of it:
- `critic_sharpness` / `actor_sharpness`: L(w + eps) - L(w) at the fixed radius rho. From the
  run's fixed-radius probe (sharpness.csv, `<net>_rho<r>_sharpness`, the epoch mean at the
  checkpoint's step) when the run has that probe at every checkpoint; otherwise measured post
  hoc on the checkpoint by `samrl.analysis.posthoc.sharpness` (SAM's one-step estimate on fixed
  minibatches of the training split; its rows also land in the run's sharpness_posthoc.csv, as
  `samrl sharpness` writes them). One source per run, so that a run's checkpoints compare;
- `td_error`, `value_estimate`, `initial_value`, `soft_opc`: d3rlpy's evaluators on the run's
  held-out episodes (dataset.test_fraction), the training split as their replay buffer;
  soft OPC's success threshold is a quantile of the held-out episodes' returns;
- `fqe`: d3rlpy's FQE (default FQEConfig) fitted on the training split for `fqe_steps` updates,
  then its initial-state value of the policy on the held-out episodes.
Model files are read with samrl.safeload (nothing in them is unpickled).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samrl.errors import RunError, SamrlError, unknown_name
from samrl.metrics import SHARPNESS, WORST_CASE, fixed_radius_prefix, metric_name
from samrl.results.runs import read_run_table
from samrl.results.selection import SIGNALS
from samrl.rundir import D3RLPY_LOG_DIR, SHARPNESS_FILE, RunDir
from samrl.safeload import load_learnable

SHARPNESS_NETS = {"critic_sharpness": "critic", "actor_sharpness": "actor"}
PROBE, POSTHOC = "probe", "posthoc"
DEFAULT_SIGNALS = tuple(s for s in SIGNALS if s != "fqe")


@dataclasses.dataclass(frozen=True)
class SignalOptions:
    """What to measure and how (the flags of `samrl select`)."""

    signals: tuple[str, ...] = DEFAULT_SIGNALS
    rho: float = 0.05  # the fixed radius of the sharpness signals
    fqe_steps: int = 0  # > 0 adds the fqe signal
    opc_quantile: float = 0.5  # soft OPC: success = held-out return >= this quantile
    batch_size: int = 256  # post-hoc sharpness: minibatch size
    n_batches: int = 4  # post-hoc sharpness: minibatches averaged
    seed: int = 0

    def wanted(self) -> tuple[str, ...]:
        extra = ("fqe",) if self.fqe_steps > 0 and "fqe" not in self.signals else ()
        return (*self.signals, *extra)


@dataclasses.dataclass
class RunSource:
    """One run opened for selection: its checkpoints, facts, data and probe table."""

    run_dir: Path
    config: dict[str, Any]
    models: dict[int, Path]
    facts: Any  # samrl.algos.AlgoFacts
    dataset: Any  # samrl.data.LoadedDataset, or None when no signal needs data
    probe: pd.DataFrame
    signals: tuple[str, ...]  # the wanted signals this algorithm has


def check_options(options: SignalOptions) -> None:
    """SamrlError for an unknown signal or a value out of range (before any work)."""
    for name in options.wanted():
        if name not in SIGNALS:
            raise SamrlError(unknown_name("signal", name, SIGNALS))
    if not options.rho > 0:
        raise SamrlError(f"--rho must be > 0, got {options.rho}")
    if not 0.0 <= options.opc_quantile < 1.0:
        raise SamrlError(f"--opc-quantile must be in [0, 1), got {options.opc_quantile}")


def open_run(run_dir: Path, options: SignalOptions) -> RunSource:
    """The run's checkpoints and what its signals need; RunError (one line) for a run without
    checkpoints, without held-out episodes when a wanted signal reads them, or whose last
    checkpoint holds another algorithm (checked before any run is measured)."""
    from samrl.algos import algo_facts, register  # lazy: d3rlpy

    run = RunDir(run_dir)
    config = run.read_config()
    if not config:
        raise RunError(f"{run_dir} is not a samrl run directory (no readable config.yaml)")
    models = run.model_files()
    if not models:
        raise RunError(
            f"{run_dir} has no saved checkpoint ({D3RLPY_LOG_DIR}/model_<step>.d3); train with "
            "train.save_interval: 1 to keep one at every evaluation"
        )
    register()  # d3rlpy must know samrl's optimizer factory and algorithms
    facts = algo_facts(str(config["algo"]["name"]))
    nets = set(facts.networks)
    # sharpness of the networks the algorithm has; d3rlpy's evaluators give NaN without a Q
    signals = tuple(
        s for s in options.wanted() if s not in SHARPNESS_NETS or SHARPNESS_NETS[s] in nets
    )
    if not signals:
        raise RunError(
            f"{run_dir}: {facts.name} has no {' or '.join(SHARPNESS_NETS.values())} network "
            f"for {', '.join(options.wanted())}; ask for d3rlpy's signals too"
        )
    probe = read_run_table(run.path, SHARPNESS_FILE)
    dataset = _dataset(json.dumps(config["dataset"], sort_keys=True, default=str))
    held_out = [s for s in signals if SIGNALS[s].held_out]
    if held_out and not dataset.test_episodes:
        raise RunError(
            f"{run_dir} has no held-out episodes (dataset.test_fraction is 0), which "
            f"{', '.join(held_out)} need; train with dataset.test_fraction: 0.1, or ask only "
            "for --signals critic_sharpness,actor_sharpness"
        )
    source = RunSource(run.path, config, models, facts, dataset, probe, signals)
    load_checkpoint(source, max(models))  # another algorithm's checkpoints: refused up front
    return source


@functools.lru_cache(maxsize=4)
def _dataset(section: str) -> Any:
    """The dataset of a config's dataset section (JSON), loaded once: the runs of a sweep
    usually share it (its seed is the dataset's, not the run's)."""
    from samrl.analysis.posthoc import run_dataset  # lazy: torch, d3rlpy, gymnasium

    return run_dataset({"dataset": json.loads(section)})


def load_checkpoint(source: RunSource, step: int) -> Any:
    """The checkpoint of `step` on the CPU, with the SAM engine installed; RunError when it
    holds another algorithm than the run's config names."""
    from samrl.sam.engine import install  # lazy: torch, d3rlpy

    algo = load_learnable(source.models[step], device="cpu:0")
    found, expected = algo.config.get_type(), source.facts.config_class.get_type()
    if found != expected:
        raise RunError(
            f"{source.models[step]} is a {found} checkpoint, but {source.run_dir} trained "
            f"{expected} (config.yaml algo.name); it does not belong to this run"
        )
    install(algo)
    return algo


def probe_values(source: RunSource, net: str, rho: float) -> dict[int, float] | None:
    """Step -> the probe's sharpness of `net` at `rho`, when it is measured at every
    checkpoint's step; None otherwise (then it is measured post hoc)."""
    column = metric_name(fixed_radius_prefix(net, rho), SHARPNESS)
    frame = source.probe
    if column not in frame or "step" not in frame:
        return None
    values = pd.Series(pd.to_numeric(frame[column], errors="coerce").to_numpy(), frame["step"])
    values = values[~values.index.duplicated(keep="last")].dropna()
    if not set(source.models) <= set(values.index):
        return None
    return {int(step): float(values[step]) for step in source.models}


def sharpness_signals(
    source: RunSource, algo: Any, step: int, options: SignalOptions
) -> list[tuple[str, str, float]]:
    """(signal, source, value) of each wanted sharpness signal at `step`."""
    from samrl.analysis.posthoc import LoadedRun, sharpness  # lazy: torch, d3rlpy

    out: list[tuple[str, str, float]] = []
    missing = []
    for signal in source.signals:
        net = SHARPNESS_NETS.get(signal)
        if net is None:
            continue
        probed = probe_values(source, net, options.rho)
        if probed is not None:
            out.append((signal, PROBE, probed[step]))
        else:
            missing.append(signal)
    if missing:
        run = LoadedRun(source.run_dir, source.run_dir.name, step, algo, source.dataset.train)
        _, rows = sharpness(
            run,
            [SHARPNESS_NETS[s] for s in missing],
            rho=options.rho,
            batch_size=options.batch_size,
            n_batches=options.n_batches,
            n_samples=1,
            seed=options.seed,
        )
        by_net = {row["net"]: row[WORST_CASE] for row in rows}
        out += [(s, POSTHOC, float(by_net[SHARPNESS_NETS[s]])) for s in missing]
    return out


def evaluators(episodes: Sequence[Any], opc_quantile: float) -> dict[str, Any]:
    """d3rlpy's evaluators of the held-out signals, on `episodes`."""
    from d3rlpy.metrics import (
        AverageValueEstimationEvaluator,
        InitialStateValueEstimationEvaluator,
        SoftOPCEvaluator,
        TDErrorEvaluator,
    )

    returns = [float(episode.compute_return()) for episode in episodes]
    threshold = float(np.quantile(returns, opc_quantile))
    return {
        "td_error": TDErrorEvaluator(episodes),
        "value_estimate": AverageValueEstimationEvaluator(episodes),
        "initial_value": InitialStateValueEstimationEvaluator(episodes),
        "soft_opc": SoftOPCEvaluator(threshold, episodes),
    }


def fqe_value(algo: Any, dataset: Any, discrete: bool, steps: int, seed: int) -> float:
    """d3rlpy's FQE (default config, the policy's scalers) fitted for `steps` updates on the
    training split; its initial-state value of the policy on the held-out episodes."""
    import torch
    from d3rlpy.logging import NoopAdapterFactory
    from d3rlpy.metrics import InitialStateValueEstimationEvaluator
    from d3rlpy.ope import FQE, DiscreteFQE, FQEConfig

    config = FQEConfig(
        observation_scaler=algo.config.observation_scaler,
        action_scaler=algo.config.action_scaler,
        reward_scaler=algo.config.reward_scaler,
    )
    fqe = (DiscreteFQE if discrete else FQE)(algo=algo, config=config, device="cpu:0")
    torch.manual_seed(seed)
    np.random.seed(seed)
    fqe.fit(
        dataset.train,
        n_steps=steps,
        n_steps_per_epoch=steps,
        logger_adapter=NoopAdapterFactory(),
        show_progress=False,
        save_interval=steps + 1,
    )
    return float(InitialStateValueEstimationEvaluator(dataset.test_episodes)(fqe, dataset.train))


def checkpoint_signals(
    source: RunSource, step: int, options: SignalOptions
) -> list[tuple[str, str, float]]:
    """(signal, source, value) of every wanted signal on the checkpoint of `step`; NaN where
    d3rlpy's evaluator does not apply (no value function)."""
    from samrl.rng import forked as forked_rng  # lazy: torch

    algo = load_checkpoint(source, step)
    out = sharpness_signals(source, algo, step, options)
    held_out = [s for s in source.signals if SIGNALS[s].held_out and s != "fqe"]
    dataset = source.dataset
    with forked_rng():  # the evaluators and FQE draw random numbers: leave the caller's alone
        if held_out:
            table = evaluators(dataset.test_episodes, options.opc_quantile)
            for signal in held_out:
                out.append((signal, "d3rlpy", _evaluate(table[signal], algo, dataset.train)))
        if "fqe" in source.signals and options.fqe_steps > 0:
            value = fqe_value(algo, dataset, source.facts.discrete, options.fqe_steps, options.seed)
            out.append(("fqe", f"d3rlpy FQE {options.fqe_steps} steps", value))
    return out


def _evaluate(evaluator: Any, algo: Any, buffer: Any) -> float:
    try:
        return float(evaluator(algo, buffer))
    except NotImplementedError:  # e.g. BC has no value function
        return math.nan
