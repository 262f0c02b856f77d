"""Summaries of run directories: one row per run (summary.csv), one row per grid point
(aggregate.csv). The directory layout is the contract in docs/run-directory.md.

summary.csv columns: the grid keys (named by key path, e.g. `optim.rho`; also `optim.name` and
`optim.rho` when they are not grid keys), seed, run_id, status, wall_time_s, steps_done, n_steps,
headline_return / headline_normalized_score (the headline score, samrl.results.headline: mean
over the evaluations of the last 20% of training, at least 3) and headline_n_evals (how many it
averaged), final_return / final_normalized_score (last row of eval.csv), best_return /
best_normalized_score (max over eval.csv; NaN without evaluations), `last_<term>` for each
loss.csv column (last epoch), `<column>_last10` for each sharpness.csv column (mean over the last
ceil(10%) of epochs, at least one), error, run_dir (relative to the sweep directory).

Which runs enter the statistics:
- summary.csv lists every run, whatever its status (running, failed, diverged, and `pending`
  for runs that sweep.json lists but whose directory does not exist yet).
- aggregate.csv computes score and sharpness statistics over *completed* runs only; `n` counts
  them. A diverged run has no meaningful final score (its losses are NaN or exploded), and
  mixing partial runs with finished ones would bias the estimate toward early-training values.
  Such runs are counted instead: `n_diverged`, `n_failed` (failed, or an unreadable
  status.json), `n_unfinished` (running, interrupted or pending), so a rho that diverges often
  is visible next to its scores rather than silently dropped.

Probability of improvement compares each point with its baseline: the point with the same
values of the other grid keys and `optim.rho == 0` (preferring the same `optim.name`), or else
`optim.name == adam`. Seeds are paired: the seed list is the same at every grid point and a
seed fixes the data order and the initial weights, so run s of a point and run s of its
baseline differ only by the optimizer. When both sides completed the same seeds, the bootstrap
resamples seeds jointly (paired); otherwise it resamples each side independently.
`prob_improvement_paired` says which was used. The statistic itself compares all pairs (rliable).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samrl.errors import RunError
from samrl.metrics import (
    POSTHOC_HESSIAN,
    POSTHOC_SHARPNESS,
    fixed_radius_prefix,
    is_last10,
    is_posthoc,
    is_sharpness_summary,
    last10_name,
    posthoc_name,
)
from samrl.networks import canonical_network
from samrl.results import stats
from samrl.results.baselines import adam_levels
from samrl.results.headline import (
    HEADLINE,
    HEADLINE_N,
    HEADLINE_RETURN,
    compared_score,
    eval_columns,
    upgrade_summary,
)
from samrl.results.labels import group_key, point_labels
from samrl.results.paper import write_tables as write_paper_tables
from samrl.results.runs import (
    RunEntry,
    declared_point,
    entry_config,
    find_runs,
    get_path,
    read_run_table,
    read_status,
    read_sweep_spec,
)
from samrl.rundir import (
    BASELINES_FILE,
    EVAL_FILE,
    LOSS_FILE,
    POSTHOC_HESSIAN_FILE,
    POSTHOC_SHARPNESS_FILE,
    SHARPNESS_FILE,
    STATUS_FILE,
    SWEEP_FILE,
    SweepDir,
    write_csv_atomic,
)
from samrl.sam.variants import is_base
from samrl.status import UNFINISHED_STATUSES, RunStatus

#: Grid keys for a bare directory of runs (no sweep.point): what a run_id is made of, less seed.
DEFAULT_KEYS = ("algo.name", "dataset.name", "optim.name", "optim.rho")
#: The optimizer of a point, always present in summary.csv (figures colour by the networks SAM
#: steps even where they are not a grid key); name and rho decide a point's baseline.
OPTIM_KEYS = ("optim.name", "optim.rho", "optim.networks")
# Also in every summary (paper tables are laid out by them; the held-out split changes the
# training data, so a table that mixes sweeps says which each row trained without).
TABLE_KEYS = ("algo.name", "dataset.name", "dataset.test_fraction")
SCORE_COLUMNS = ("final_return", "final_normalized_score")
BEST_COLUMNS = ("best_return", "best_normalized_score")
#: The score every table compares on (samrl.results.headline), and how many evaluations it averaged.
HEADLINE_COLUMNS = (HEADLINE_RETURN, HEADLINE, HEADLINE_N)
#: Columns a summary.csv of an earlier samrl may lack, with the value they get (None: unknown).
SUMMARY_DEFAULTS: dict[str, object] = {
    key: None for key in (*OPTIM_KEYS, *TABLE_KEYS, *HEADLINE_COLUMNS, *BEST_COLUMNS)
}
STAT_SUFFIXES = ("mean", "std", "iqm", "ci_low", "ci_high")
#: Fraction of the last epochs averaged for sharpness columns.
LAST_FRACTION = 0.1


# --------------------------------------------------------------------------- reading one run


def _scalar(value: Any) -> Any:
    # Lists and dicts (e.g. optim.networks) cannot be grouped on: keep them as JSON text.
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, sort_keys=True)
    return value


def last_fraction_mean(frame: pd.DataFrame, fraction: float = LAST_FRACTION) -> pd.Series:
    """Mean of each column over the last ceil(fraction * rows) rows (at least one), NaNs skipped.

    With 25 epochs and fraction 0.1 that is the last 3 epochs; with 10 epochs the last one.
    """
    if frame.empty:
        return pd.Series(dtype=float)
    n_rows = len(frame)
    # Integer ceil: 0.1 * 30 is 3.0000000000000004 in floats, which math.ceil would make 4.
    tenths = round(fraction * 1000)
    n_last = max(1, -(-n_rows * tenths // 1000))
    return frame.tail(n_last).mean(numeric_only=True)


def summarize_run(
    entry: RunEntry, keys: Sequence[str] = DEFAULT_KEYS, root: Path | None = None
) -> dict[str, Any]:
    """One summary row (a dict) for one run directory; see the module docstring for columns.

    Each of `keys` (and optim.name, optim.rho) is read from the run's grid point, or from its
    config.yaml when the point does not have it.
    """
    run_dir = entry.directory
    config = entry_config(entry)
    status = read_status(run_dir)
    point = declared_point(entry)
    row: dict[str, Any] = {}
    algo = str(point.get("algo.name", get_path(config, "algo.name")))
    for key in dict.fromkeys([*keys, *OPTIM_KEYS, *TABLE_KEYS]):
        value = point[key] if key in point else get_path(config, key)
        if key.endswith(".networks") and isinstance(value, list):
            # a run written when every single network was called `loss`: today's names
            value = [canonical_network(net, algo) for net in value]
        row[key] = _scalar(value)
    seed = get_path(config, "train.seed")
    row["seed"] = entry.seed if seed is None else seed
    row["run_id"] = get_path(config, "samrl.run_id") or entry.run_id or run_dir.name
    row["status"] = status.get("status", RunStatus.UNKNOWN)
    row["wall_time_s"] = status.get("wall_time_s")
    row["steps_done"] = status.get("steps_done")
    row["n_steps"] = status.get("n_steps", get_path(config, "train.n_steps"))
    row.update(eval_columns(read_run_table(run_dir, EVAL_FILE)))

    losses = read_run_table(run_dir, LOSS_FILE)
    if row["steps_done"] is None and "step" in losses:
        row["steps_done"] = losses["step"].max()
    for column in losses.columns.drop(["epoch", "step"], errors="ignore"):
        values = pd.to_numeric(losses[column], errors="coerce").dropna()
        row[f"last_{column}"] = values.iloc[-1] if len(values) else np.nan

    sharpness = read_run_table(run_dir, SHARPNESS_FILE)
    means = last_fraction_mean(sharpness.drop(columns=["epoch", "step"], errors="ignore"))
    for column, value in means.items():
        row[last10_name(str(column))] = value

    row.update(posthoc_columns(run_dir))
    row["error"] = status.get("error")
    row["run_dir"] = _relative(run_dir, root)
    return row


def posthoc_columns(run_dir: Path) -> dict[str, float]:
    """`posthoc_<net>_rho<r>_{worst_case,average_case}` from sharpness_posthoc.csv and
    `posthoc_<net>_{lambda_1,trace}` from hessian_posthoc.csv, each at the run's latest
    measured step (the last row written wins when one radius was measured several ways)."""
    out: dict[str, float] = {}
    sharp = read_run_table(run_dir, POSTHOC_SHARPNESS_FILE)
    if not sharp.empty and {"step", "net", "rho"} <= set(sharp.columns):
        latest = sharp[sharp["step"] == sharp["step"].max()]
        for _, r in latest.iterrows():
            prefix = fixed_radius_prefix(str(r["net"]), float(r["rho"]))
            for column in POSTHOC_SHARPNESS:
                if column in r:
                    out[posthoc_name(prefix, column)] = float(r[column])
    hess = read_run_table(run_dir, POSTHOC_HESSIAN_FILE)
    if not hess.empty and {"step", "net"} <= set(hess.columns):
        latest = hess[hess["step"] == hess["step"].max()]
        for _, r in latest.iterrows():
            for column in POSTHOC_HESSIAN:
                if column in r and pd.notna(r[column]):
                    out[posthoc_name(str(r["net"]), column)] = float(r[column])
    return out


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


# --------------------------------------------------------------------------- tables


@dataclass
class SweepTables:
    """summary (one row per run), aggregate (one row per grid point), the grid keys, and the
    Adam baseline level per algorithm and dataset (samrl.results.baselines)."""

    summary: pd.DataFrame
    aggregate: pd.DataFrame
    keys: list[str]
    baselines: pd.DataFrame = field(default_factory=pd.DataFrame)


def read_summary(path: Path | str) -> pd.DataFrame:
    """A summary.csv, whichever samrl wrote it: the columns it predates (SUMMARY_DEFAULTS)
    are added as unknown, so the tables can be rebuilt from it."""
    return upgrade_summary(pd.read_csv(path), SUMMARY_DEFAULTS)


def build_summary(
    entries: Sequence[RunEntry], root: Path | None = None, keys: Sequence[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The summary frame, with grid-key columns named by key path, and the grid keys used:
    `keys` if given, else every key of the runs' grid points, else DEFAULT_KEYS."""
    if keys is None:
        declared = [key for entry in entries for key in declared_point(entry)]
        keys = list(dict.fromkeys(declared)) or list(DEFAULT_KEYS)
    keys = list(keys)
    frame = pd.DataFrame([summarize_run(entry, keys, root) for entry in entries])
    extra = [k for k in (*OPTIM_KEYS, *TABLE_KEYS) if k not in keys]
    head = [
        *keys,
        *extra,
        "seed",
        "run_id",
        "status",
        "wall_time_s",
        "steps_done",
        "n_steps",
        *HEADLINE_COLUMNS,
        *SCORE_COLUMNS,
        *BEST_COLUMNS,
    ]
    for column in [*head, "error", "run_dir"]:
        if column not in frame:
            frame[column] = np.nan
    last = [c for c in frame if c.startswith("last_")]
    sharpness = [c for c in frame if is_last10(c)]
    posthoc = sorted(c for c in frame if is_posthoc(c))
    return frame[[*head, *last, *sharpness, *posthoc, "error", "run_dir"]], keys


def summarize_runs(
    run_dirs: Iterable[Path | str], n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, aggregate) for any collection of run directories; writes nothing.

    Grid keys come from the runs' `sweep.point`; runs made outside a sweep are grouped by
    algo.name, dataset.name, optim.name and optim.rho.
    """
    entries = [RunEntry(Path(d)) for d in run_dirs]
    tables = _tables(entries, None, None, n_boot, seed)
    return tables.summary, tables.aggregate


def compute_sweep_tables(
    sweep_dir: Path | str, n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0
) -> SweepTables:
    """Summary and aggregate of a sweep (or a bare directory of runs); writes nothing."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise RunError(f"{sweep_dir}: no such directory")
    entries = find_runs(sweep_dir)
    if not entries:
        raise RunError(
            f"{sweep_dir}: not a sweep or run directory (no {SWEEP_FILE}, and no run "
            f"directory with a {STATUS_FILE} one or two levels below)"
        )
    spec = read_sweep_spec(sweep_dir)
    keys = list(spec["grid"]) if spec and isinstance(spec.get("grid"), dict) else None
    return _tables(entries, sweep_dir, keys, n_boot, seed)


def summarize_sweep(
    sweep_dir: Path | str, n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write summary.csv and aggregate.csv into `sweep_dir` (atomically) and return them.

    Works on partly finished sweeps: unfinished runs appear in the summary with their status.
    """
    tables = compute_sweep_tables(sweep_dir, n_boot, seed)
    write_sweep_tables(sweep_dir, tables)
    return tables.summary, tables.aggregate


def write_sweep_tables(sweep_dir: Path | str, tables: SweepTables) -> list[Path]:
    """summary.csv, aggregate.csv, baselines.csv and the paper tables (scores.*), each written
    atomically; returns the paper tables' paths."""
    folder = SweepDir(sweep_dir)
    write_csv_atomic(tables.summary, folder.summary_file)
    write_csv_atomic(tables.aggregate, folder.aggregate_file)
    write_csv_atomic(tables.baselines, folder.path / BASELINES_FILE)
    return write_paper_tables(tables.summary, tables.keys, folder.path)


def _tables(
    entries: Sequence[RunEntry],
    root: Path | None,
    keys: Sequence[str] | None,
    n_boot: int,
    seed: int,
) -> SweepTables:
    summary, keys = build_summary(entries, root, keys)
    aggregate = aggregate_summary(summary, keys, n_boot=n_boot, seed=seed)
    baselines = adam_levels(summary, root, n_boot=n_boot, seed=seed)
    return SweepTables(summary, aggregate, keys, baselines)


def grid_points(
    summary: pd.DataFrame, keys: Sequence[str]
) -> list[tuple[tuple[Any, ...], pd.DataFrame]]:
    """(point values, runs) per grid point, in order of first appearance in the summary."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, values in zip(
        summary.index, summary[list(keys)].itertuples(index=False), strict=True
    ):
        groups.setdefault(group_key(values), []).append(index)
    return [(point, summary.loc[rows]) for point, rows in groups.items()]


def aggregate_summary(
    summary: pd.DataFrame, keys: Sequence[str], n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """One row per grid point: counts, statistics of completed runs, probability of
    improvement over the point's baseline. Columns: the grid keys (plus OPTIM_KEYS that are
    not grid keys), label, n, n_runs, n_diverged, n_failed, n_unfinished,
    `<metric>_{mean,std,iqm,ci_low,ci_high}` for the headline, final and best scores and
    every `*_sharpness_last10`, then prob_improvement, prob_improvement_ci_low/high,
    prob_improvement_paired, prob_improvement_metric (the headline score), baseline.

    A summary written by an earlier samrl is read as it is: the columns it predates
    (optim.networks, the headline) count as unknown."""
    keys = list(keys)
    summary = upgrade_summary(summary, SUMMARY_DEFAULTS)
    metrics = [
        HEADLINE_RETURN,
        HEADLINE,
        *SCORE_COLUMNS,
        *BEST_COLUMNS,
        *(c for c in summary if is_sharpness_summary(c) or is_posthoc(c)),
    ]
    points = grid_points(summary, keys)
    labels = point_labels([_point_dict(runs, keys) for _, runs in points], keys)
    score = compared_score(summary[summary["status"] == RunStatus.COMPLETED])

    rows = []
    for (_, runs), label in zip(points, labels, strict=True):
        done = runs[runs["status"] == RunStatus.COMPLETED]
        # optim.name / optim.rho ride along even when not grid keys: plots and baselines use them.
        row: dict[str, Any] = _point_dict(runs, keys)
        row["label"] = label
        row["n"] = len(done)
        row["n_runs"] = len(runs)
        row["n_diverged"] = int((runs["status"] == RunStatus.DIVERGED).sum())
        row["n_failed"] = int(runs["status"].isin([RunStatus.FAILED, RunStatus.UNKNOWN]).sum())
        row["n_unfinished"] = int(runs["status"].isin(UNFINISHED_STATUSES).sum())
        for metric in metrics:
            row.update(_metric_stats(metric, done[metric], n_boot, seed))
        rows.append(row)
    aggregate = pd.DataFrame(rows)
    _add_improvement(aggregate, points, keys, score, n_boot, seed)
    return aggregate


def _metric_stats(metric: str, column: pd.Series, n_boot: int, seed: int) -> dict[str, float]:
    values = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=float)
    low, high = stats.stratified_bootstrap_ci(values, stats.iqm, n_boot=n_boot, seed=seed)
    return {
        f"{metric}_mean": float(values.mean()) if values.size else np.nan,
        # Sample standard deviation (ddof=1): NaN for a single run.
        f"{metric}_std": float(values.std(ddof=1)) if values.size > 1 else np.nan,
        f"{metric}_iqm": stats.iqm(values),
        f"{metric}_ci_low": low,
        f"{metric}_ci_high": high,
    }


def _point_dict(runs: pd.DataFrame, keys: Sequence[str]) -> dict[str, Any]:
    point = {k: runs[k].iloc[0] for k in keys}
    for key in OPTIM_KEYS:
        if key not in point:
            present = runs[key].dropna()
            point[key] = present.iloc[0] if len(present) else None
    return point


def _find_baseline(index: int, points: list[dict[str, Any]], keys: Sequence[str]) -> int | None:
    """Index of the baseline of points[index] (see the module docstring), or None."""
    # Which networks SAM steps is part of the optimizer too: Adam is the baseline of SAM on
    # the actor, on the critic and on both alike.
    others = [k for k in keys if k not in OPTIM_KEYS]
    this = points[index]
    same = [
        i
        for i, p in enumerate(points)
        if group_key([p[k] for k in others]) == group_key([this[k] for k in others])
    ]
    rho_zero = [i for i in same if _is_zero(points[i]["optim.rho"])]
    preferred = [i for i in rho_zero if points[i]["optim.name"] == this["optim.name"]]
    adam = [i for i in same if is_base(points[i]["optim.name"])]
    candidates = preferred or rho_zero or adam
    return candidates[0] if candidates and candidates[0] != index else None


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


def _add_improvement(
    aggregate: pd.DataFrame,
    points: list[tuple[tuple[Any, ...], pd.DataFrame]],
    keys: Sequence[str],
    score: str,
    n_boot: int,
    seed: int,
) -> None:
    columns = {
        name: [np.nan] * len(points)
        for name in ("prob_improvement", "prob_improvement_ci_low", "prob_improvement_ci_high")
    }
    paired_column: list[Any] = [None] * len(points)
    baseline_column: list[Any] = [None] * len(points)
    point_dicts = [_point_dict(runs, keys) for _, runs in points]
    varies_optim = any(k in OPTIM_KEYS for k in keys)
    for index, (_, runs) in enumerate(points):
        base = _find_baseline(index, point_dicts, keys) if varies_optim else None
        if base is None:
            continue
        x = _scores_by_seed(runs, score)
        y = _scores_by_seed(points[base][1], score)
        baseline_column[index] = aggregate.loc[base, "label"]
        if x.empty or y.empty:
            continue
        paired = set(x.index) == set(y.index) and x.index.is_unique and y.index.is_unique
        if paired:
            y = y.loc[x.index]
        x_values, y_values = x.to_numpy(float), y.to_numpy(float)
        columns["prob_improvement"][index] = stats.probability_of_improvement(x_values, y_values)
        low, high = stats.probability_of_improvement_ci(
            x_values, y_values, n_boot=n_boot, seed=seed, paired=paired
        )
        columns["prob_improvement_ci_low"][index] = low
        columns["prob_improvement_ci_high"][index] = high
        paired_column[index] = paired
    for name, values in columns.items():
        aggregate[name] = values
    aggregate["prob_improvement_paired"] = paired_column
    aggregate["prob_improvement_metric"] = score
    aggregate["baseline"] = baseline_column


def _scores_by_seed(runs: pd.DataFrame, score: str) -> pd.Series:
    done = runs[(runs["status"] == RunStatus.COMPLETED) & runs[score].notna()]
    return pd.Series(done[score].to_numpy(float), index=done["seed"].to_numpy())


# --------------------------------------------------------------------------- labels


def format_number(value: object, digits: int = 4) -> str:
    """Compact text for a table cell: 4 significant digits, '-' for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def score_column(aggregate: pd.DataFrame) -> str:
    """The score the aggregate compares points on (the headline normalized score when there
    is one)."""
    if "prob_improvement_metric" in aggregate and len(aggregate):
        return str(aggregate["prob_improvement_metric"].iloc[0])
    return HEADLINE
