"""`samrl select`: which checkpoint would each environment-free signal choose, and how well?

Reads run directories (or sweeps of them), measures the signals of every saved checkpoint
(samrl.analysis.selection_signals), writes selection.csv, and where the runs evaluated in the
environment at those steps, scores the signals (samrl.results.selection). The command lives in
analysis because it measures models; analysis may read results, not the other way round.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import click
import pandas as pd

from samrl.analysis.selection_signals import (
    SignalOptions,
    check_options,
    checkpoint_signals,
    open_run,
)
from samrl.config.options import QUIET, SelectArgs, with_options
from samrl.errors import RunError
from samrl.progress import step_bar
from samrl.results import selection
from samrl.results.cli import bootstrap_options, plural
from samrl.results.labels import point_label, varying_keys
from samrl.results.runs import (
    declared_point,
    find_runs,
    get_path,
    is_run_dir,
    read_config,
    read_run_table,
)
from samrl.results.runs import read_status as run_status
from samrl.results.selection import COLUMNS, SIGNALS, choices, regret_figure
from samrl.rundir import EVAL_FILE, atomic_write, write_csv_atomic
from samrl.status import RunStatus

SELECTION_FILE = "selection.csv"
TABLE_FILES = ("selection_table.csv", "selection_table.md")
FIGURE_FILE = "selection_regret.png"
#: d3rlpy's default FQE (256-256, batch 100), pendulum-replay, one torch thread, load 9, 2 cores.
FQE_COST = "measured: 11 s per 1000 updates per checkpoint, one thread, 2 loaded cores"
KEY_DEFAULTS = ("algo.name", "dataset.name", "optim.name", "optim.rho", "optim.networks")

EXAMPLE = """\b
Examples:
  samrl select results/selection
  samrl select runs/sweeps/selection-smoke --signals critic_sharpness,td_error
  samrl select results/selection --fqe-steps 2000 --out /tmp/selection"""


@click.command("select", epilog=EXAMPLE)
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--signals",
    default=",".join(s for s in SIGNALS if s != "fqe"),
    show_default=True,
    help="Comma-separated signals: " + ", ".join(SIGNALS) + ".",
)
@click.option("--rho", default=0.05, show_default=True, help="Fixed radius of the sharpness.")
@click.option(
    "--fqe-steps",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help=f"Fit d3rlpy's FQE this many updates per checkpoint (0: no FQE; {FQE_COST}).",
)
@click.option(
    "--opc-quantile",
    default=0.5,
    show_default=True,
    help="Soft OPC: held-out episodes at or above this return quantile are the successes.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write (default: the first directory given).",
)
@QUIET
@bootstrap_options
@with_options(SelectArgs)
def select_cmd(args: SelectArgs) -> None:
    """Choose checkpoints without the environment: for every saved checkpoint of every run,
    the critic's and actor's sharpness at a fixed radius (the run's probe, else post hoc),
    d3rlpy's TD error, average and initial-state value estimates and soft OPC on the run's
    held-out episodes, and optionally d3rlpy's FQE. Writes selection.csv, prints the checkpoint
    each signal chooses per run and the run per cell (runs of one grid point), and, where
    eval.csv scored those checkpoints, each signal's Spearman correlation with the score and
    regret@1/@3 (IQM, 95% bootstrap CI over runs) beside the last-checkpoint and random-choice
    baselines: selection_table.csv/.md and selection_regret.png.

    DIRS are run directories or sweep directories. Runs need checkpoints at the steps to
    compare (train.save_interval: 1 keeps one per evaluation) and held-out episodes
    (dataset.test_fraction > 0) for d3rlpy's signals.
    """
    options = SignalOptions(
        signals=args.signal_names,
        rho=args.rho,
        fqe_steps=args.fqe_steps,
        opc_quantile=args.opc_quantile,
    )
    check_options(options)
    out = args.out if args.out is not None else args.dirs[0]
    runs = collect_runs(args.dirs)
    rows = measure(runs, options, out, progress=not args.quiet)
    write_outputs(rows, out, args.n_boot, args.seed)


class RunToSelect(NamedTuple):
    directory: Path
    cell: str  # the runs of one grid point, differing only by seed
    seed: int | None


def collect_runs(dirs: tuple[Path, ...]) -> list[RunToSelect]:
    """(run directory, cell, seed) of every run to select among: each given run directory,
    and the completed runs of each given sweep (others are named in one line and left out)."""
    found: list[tuple[Path, dict[str, Any], int | None]] = []
    for directory in dirs:
        if not directory.is_dir():
            raise RunError(f"{directory}: no such directory")
        entries = find_runs(directory)
        if not entries:
            raise RunError(f"{directory} holds no samrl run directory")
        lone = is_run_dir(directory)
        skipped = []
        for entry in entries:
            if not lone and run_status(entry.directory)["status"] != RunStatus.COMPLETED:
                skipped.append(entry.directory.name)
                continue
            config = read_config(entry.directory)
            point = declared_point(entry) or {k: _get(config, k) for k in KEY_DEFAULTS}
            seed = entry.seed if entry.seed is not None else _get(config, "train.seed")
            found.append((entry.directory, point, seed))
        if skipped:
            click.echo(f"samrl: left out {plural(len(skipped), 'run')} not completed", err=True)
    labels = cell_labels([point for _, point, _ in found])
    return [
        RunToSelect(run, label, seed) for (run, _, seed), label in zip(found, labels, strict=True)
    ]


def _get(config: dict[str, Any], key: str) -> Any:
    return get_path(config, key)


def cell_labels(points: list[dict[str, Any]]) -> list[str]:
    """Each run's grid point (seed excluded) as one text naming the keys that differ between
    points: runs with the same text form a cell."""
    texts = [
        {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in point.items()}
        for point in points
    ]
    keys = sorted({key for point in texts for key in point} - {"train.seed"})
    shown = varying_keys(texts, keys)
    return [point_label(point, shown) for point in texts]


def measure(
    runs: list[RunToSelect], options: SignalOptions, out: Path, *, progress: bool
) -> pd.DataFrame:
    """selection.csv's rows: every signal of every checkpoint, with the env score there. All
    runs are opened (and checked) before any checkpoint is measured."""
    sources = [(open_run(run_dir, options), cell, seed) for run_dir, cell, seed in runs]
    total = sum(len(source.models) for source, _, _ in sources)
    rows: list[dict[str, Any]] = []
    with _threads(), step_bar(total, "select", "checkpoint", progress) as bar:
        for source, cell, seed in sources:
            scores = env_scores(source.run_dir)
            base = {
                "run": _relative(source.run_dir, out),
                "run_id": source.run_dir.name,
                "cell": cell,
                "algo": source.facts.name,
                "seed": seed,
            }
            for step in source.models:
                for signal, origin, value in checkpoint_signals(source, step, options):
                    score = scores.get(step, float("nan"))
                    rows.append(
                        {**base, "step": step, "signal": signal, "source": origin}
                        | {"value": value, "score": score}
                    )
                bar.update(1)
    return pd.DataFrame(rows, columns=list(COLUMNS))


@contextlib.contextmanager
def _threads() -> Iterator[None]:
    """One torch thread unless OMP_NUM_THREADS says otherwise (torch reads it at start), as
    `train.threads: auto` does: small networks on a shared machine lose most of their speed to
    contended threads (d3rlpy's FQE measured 20x slower on 2 threads of 2 loaded cores)."""
    import torch

    previous = torch.get_num_threads()
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def env_scores(run_dir: Path) -> dict[int, float]:
    """Step -> the environment score of eval.csv: the normalized score, else the mean return."""
    evals = read_run_table(run_dir, EVAL_FILE)
    for column in ("normalized_score", "return_mean"):
        if column in evals and "step" in evals:
            values = pd.to_numeric(evals[column], errors="coerce")
            if values.notna().any():
                return dict(zip(evals["step"].astype(int), values.astype(float), strict=True))
    return {}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def write_outputs(rows: pd.DataFrame, out: Path, n_boot: int, seed: int) -> None:
    """selection.csv; the choices printed; with scores, the table and figure; one last line."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(rows, out / SELECTION_FILE)
    written = [SELECTION_FILE]
    print_choices(rows)
    if rows["score"].notna().any():
        table = selection.summary_table(rows, n_boot, seed)
        write_csv_atomic(table, out / TABLE_FILES[0])
        atomic_write(out / TABLE_FILES[1], selection.markdown(table))
        click.echo("\n" + selection.markdown(table))
        written += [*TABLE_FILES, _figure(table, out)]
    else:
        click.echo("no environment scores at the checkpoints' steps: signals not scored")
    n_runs, n_checkpoints = rows["run"].nunique(), rows.drop_duplicates(["run", "step"]).shape[0]
    click.echo(
        f"samrl: {plural(rows['signal'].nunique(), 'signal')} of "
        f"{plural(n_checkpoints, 'checkpoint')} ({plural(n_runs, 'run')}): "
        f"{', '.join(written)} in {out}"
    )


def _figure(table: pd.DataFrame, out: Path) -> str:
    from samrl.results.plots import save

    figure = regret_figure(table, "Choosing a checkpoint without the environment")
    save(figure, out / FIGURE_FILE)
    return FIGURE_FILE


def print_choices(rows: pd.DataFrame) -> None:
    """Per run, then per cell: what each signal chooses, with its score where known."""
    for group, what in (("run", "checkpoint step"), ("cell", "run")):
        chosen = choices(rows, group)
        if chosen.empty:
            continue
        click.echo(f"\nchosen {what} per {group} (score in parentheses):")
        for key, unit in chosen.groupby(group, sort=False):
            parts = [f"{r.signal} {r.choice}{_score(r.score)}" for r in unit.itertuples()]
            click.echo(f"  {key}: " + "; ".join(parts))


def _score(value: float) -> str:
    return f" ({value:.1f})" if pd.notna(value) else ""
