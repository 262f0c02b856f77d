"""PNG plots of one run or of a sweep (matplotlib, Agg, no pyplot global state).

Each plot has a `build_*` function returning the `Figure` (tests count its axes and lines) and
the `plot_*` functions save them. A metric is a column of loss.csv, sharpness.csv or eval.csv
(`critic_loss`, `critic_sharpness`, `return_mean`, ...), plotted against the training step.

Sweep learning curves average the seeds of a grid point step by step (runs that are still
running contribute the steps they have; failed and diverged runs are left out, as in
aggregate.csv) with a percentile bootstrap 95% band for the mean over seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from samrl.errors import RunError, SamrlError, unknown_name
from samrl.results.aggregate import (
    OPTIM_KEYS,
    SHARPNESS_SUFFIX,
    SweepTables,
    compute_sweep_tables,
    grid_points,
)
from samrl.results.runs import find_runs, is_run_dir, read_config, read_csv, run_path
from samrl.rundir import METRIC_FILES, SWEEP_FILE

INDEX_COLUMNS = ("epoch", "step")
#: Run statuses whose curves enter the sweep means.
CURVE_STATUSES = ("completed", "running")
CURVE_BAND_BOOT = 1000
CURVES_FILE = "curves.png"
VS_RHO_FILE = "final_vs_rho.png"
SCATTER_FILE = "sharpness_vs_score.png"


# --------------------------------------------------------------------------- metrics


def run_metrics(run_dir: Path) -> dict[str, str]:
    """Metric name -> the CSV file holding it, for every column with at least one value."""
    found: dict[str, str] = {}
    for file_name in METRIC_FILES:
        frame = read_csv(Path(run_dir) / file_name)
        for column in frame.columns:
            if column not in INDEX_COLUMNS and frame[column].notna().any():
                found.setdefault(column, file_name)
    return found


def default_metrics(available: Sequence[str]) -> list[str]:
    """Loss terms, `<net>_sharpness` and the evaluation return / normalized score."""
    chosen = [m for m in available if m.endswith("_loss") or m.endswith("_sharpness")]
    chosen += [m for m in ("return_mean", "normalized_score") if m in available]
    return chosen or list(available)


def resolve_metrics(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """The metrics to plot; an unknown name is a SamrlError naming the closest one."""
    if not available:
        raise RunError("nothing to plot yet: no loss.csv, sharpness.csv or eval.csv rows")
    if not requested:
        return default_metrics(available)
    for name in requested:
        if name not in available:
            raise SamrlError(unknown_name("metric", name, available))
    return list(dict.fromkeys(requested))


def read_curve(run_dir: Path, metric: str, file_name: str) -> pd.Series:
    """metric by step (NaN rows dropped); empty when the file or column is missing."""
    frame = read_csv(Path(run_dir) / file_name)
    if metric not in frame or "step" not in frame:
        return pd.Series(dtype=float)
    curve = pd.Series(pd.to_numeric(frame[metric], errors="coerce").to_numpy(), index=frame["step"])
    curve = curve[~curve.index.duplicated(keep="last")]
    return curve.dropna()


# --------------------------------------------------------------------------- figure helpers


def new_figure(n_axes: int, width: float = 4.6, height: float = 3.3) -> tuple[Figure, list[Axes]]:
    """A figure with exactly n_axes axes in a grid of at most three columns."""
    n_cols = max(1, min(3, n_axes))
    n_rows = max(1, math.ceil(n_axes / n_cols))
    figure = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(n_rows, n_cols, i + 1) for i in range(n_axes)]
    return figure, axes


def save(figure: Figure, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    return out


# --------------------------------------------------------------------------- one run


def build_run_figure(run_dir: Path, metrics: Sequence[str] | None = None) -> Figure:
    """One axes per metric, one line each, against the training step."""
    run_dir = Path(run_dir)
    available = run_metrics(run_dir)
    chosen = resolve_metrics(metrics, list(available))
    figure, axes = new_figure(len(chosen))
    for ax, metric in zip(axes, chosen, strict=True):
        curve = read_curve(run_dir, metric, available[metric])
        ax.plot(curve.index, curve.to_numpy(), marker="." if len(curve) < 30 else None)
        _decorate(ax, metric)
    run_id = (read_config(run_dir).get("samrl") or {}).get("run_id") or run_dir.name
    figure.suptitle(str(run_id))
    return figure


def plot_run(run_dir: Path, metrics: Sequence[str] | None = None, out: Path | None = None) -> Path:
    """Save the run's curves (default `<run_dir>/plots/curves.png`); returns the file."""
    run_dir = Path(run_dir)
    figure = build_run_figure(run_dir, metrics)
    return save(figure, out if out is not None else run_dir / "plots" / CURVES_FILE)


def _decorate(ax: Axes, metric: str) -> None:
    ax.set_title(metric)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)


# --------------------------------------------------------------------------- a sweep


def mean_with_band(
    runs_by_step: np.ndarray,
    n_boot: int = CURVE_BAND_BOOT,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) per column of a (runs, steps) matrix with NaN for missing steps.

    The band is a percentile bootstrap over runs (seeds) of the per-step mean.
    """
    rng = np.random.default_rng(seed)
    n_runs = runs_by_step.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps no run has reached yet
        mean = np.nanmean(runs_by_step, axis=0)
        if n_runs < 2:
            return mean, mean.copy(), mean.copy()
        index = rng.integers(0, n_runs, size=(n_boot, n_runs))
        replicates = np.nanmean(runs_by_step[index], axis=1)
        tail = 100.0 * (1.0 - confidence) / 2.0
        low, high = np.nanpercentile(replicates, [tail, 100.0 - tail], axis=0)
    return mean, low, high


def sweep_metrics(sweep_dir: Path, tables: SweepTables) -> dict[str, str]:
    """Every metric some run of the sweep has, with its file."""
    found: dict[str, str] = {}
    for relative in tables.summary["run_dir"]:
        for metric, file_name in run_metrics(run_path(sweep_dir, relative)).items():
            found.setdefault(metric, file_name)
    return found


def build_curves_figure(
    sweep_dir: Path, tables: SweepTables, metrics: Sequence[str] | None = None, seed: int = 0
) -> Figure:
    """One axes per metric; one line per grid point (mean over seeds) with a CI band."""
    available = sweep_metrics(sweep_dir, tables)
    chosen = resolve_metrics(metrics, list(available))
    figure, axes = new_figure(len(chosen))
    points = grid_points(tables.summary, tables.keys)
    labels = list(tables.aggregate["label"])
    # One colour per grid point in every panel, even where a point lacks the metric.
    colors = [f"C{i % 10}" for i in range(len(labels))]
    for ax, metric in zip(axes, chosen, strict=True):
        for (_, runs), label, color in zip(points, labels, colors, strict=True):
            curves = [
                read_curve(run_path(sweep_dir, r.run_dir), metric, available[metric])
                for r in runs.itertuples()
                if r.status in CURVE_STATUSES
            ]
            curves = [c for c in curves if len(c)]
            if not curves:
                continue
            matrix = pd.concat(curves, axis=1).sort_index()
            mean, low, high = mean_with_band(matrix.to_numpy(dtype=float).T, seed=seed)
            ax.plot(matrix.index, mean, color=color, label=f"{label} (n={len(curves)})")
            if len(curves) > 1:
                ax.fill_between(matrix.index, low, high, color=color, alpha=0.2)
        _decorate(ax, metric)
        if ax.get_lines():
            ax.legend(fontsize="small")
    figure.suptitle("mean over seeds, 95% bootstrap band")
    return figure


def vs_rho_columns(aggregate: pd.DataFrame) -> list[str]:
    """Columns plotted against rho: the compared score and each `<net>_sharpness_last10`."""
    score = (
        str(aggregate["prob_improvement_metric"].iloc[0])
        if "prob_improvement_metric" in aggregate and len(aggregate)
        else "final_return"
    )
    sharpness = [c.removesuffix("_iqm") for c in aggregate if c.endswith(SHARPNESS_SUFFIX + "_iqm")]
    return [score, *sharpness]


def build_vs_rho_figure(aggregate: pd.DataFrame, keys: Sequence[str]) -> Figure:
    """IQM with 95% CI error bars of the final score and final sharpness against rho.

    Adam points are dashed horizontal lines; several series when other grid keys vary. Without
    a rho grid key the x axis lists the grid points instead.
    """
    columns = vs_rho_columns(aggregate)
    figure, axes = new_figure(len(columns))
    has_rho = "optim.rho" in keys
    for ax, column in zip(axes, columns, strict=True):
        if has_rho:
            _errorbars_vs_rho(ax, aggregate, keys, column)
            ax.set_xlabel("rho")
        else:
            x = np.arange(len(aggregate))
            ax.errorbar(
                x, aggregate[f"{column}_iqm"], yerr=_yerr(aggregate, column), fmt="o", capsize=3
            )
            ax.set_xticks(x, list(aggregate["label"]), rotation=30, ha="right")
        ax.set_title(f"{column} (IQM, 95% CI)")
        ax.grid(alpha=0.3)
        if len(ax.get_legend_handles_labels()[0]) > 1:  # one series needs no legend
            ax.legend(fontsize="small")
    return figure


def _yerr(rows: pd.DataFrame, column: str) -> np.ndarray:
    centre = rows[f"{column}_iqm"].to_numpy(float)
    below = centre - rows[f"{column}_ci_low"].to_numpy(float)
    above = rows[f"{column}_ci_high"].to_numpy(float) - centre
    # A percentile interval can miss the point estimate by a hair; bars cannot be negative.
    return np.clip(np.vstack([below, above]), 0.0, None)


def _errorbars_vs_rho(ax: Axes, aggregate: pd.DataFrame, keys: Sequence[str], column: str) -> None:
    series_keys = [k for k in keys if k not in OPTIM_KEYS]
    if "optim.name" in keys:
        series_keys.append("optim.name")
    is_adam = aggregate["optim.name"].eq("adam")
    others = aggregate[~is_adam]
    groups = (
        list(others.groupby(series_keys, dropna=False, sort=False))
        if series_keys
        else [((), others)]
    )
    for values, rows in groups:
        rows = rows.sort_values("optim.rho")
        names = [str(v) for v in np.atleast_1d(values)] if len(groups) > 1 else []
        label = " ".join(names) or str(rows["optim.name"].iloc[0])
        ax.errorbar(
            rows["optim.rho"].astype(float),
            rows[f"{column}_iqm"],
            yerr=_yerr(rows, column),
            marker="o",
            capsize=3,
            label=label,
        )
    for _, row in aggregate[is_adam].iterrows():
        ax.axhline(row[f"{column}_iqm"], linestyle="--", color="grey", label=row["label"])
    rhos = aggregate.loc[~is_adam, "optim.rho"].astype(float)
    positive = rhos[rhos > 0]
    if len(positive) and positive.max() / positive.min() >= 20:
        ax.set_xscale("symlog", linthresh=float(positive.min()))  # rho grids are often geometric


def build_scatter_figure(tables: SweepTables) -> Figure | None:
    """Final sharpness against final score, one point per completed run, one colour per grid
    point and one axes per network; None when no run measured sharpness."""
    summary = tables.summary
    score = vs_rho_columns(tables.aggregate)[0]
    columns = [c for c in summary if c.endswith(SHARPNESS_SUFFIX) and summary[c].notna().any()]
    if not columns:
        return None
    figure, axes = new_figure(len(columns))
    points = grid_points(summary, tables.keys)
    for ax, column in zip(axes, columns, strict=True):
        for (_, runs), label in zip(points, tables.aggregate["label"], strict=True):
            done = runs[runs["status"] == "completed"]
            if len(done):
                ax.scatter(done[column], done[score], label=label, s=24)
        ax.set_xlabel(column)
        ax.set_ylabel(score)
        ax.set_title(f"{column.removesuffix('_last10')} vs {score}")
        ax.grid(alpha=0.3)
        if ax.collections:
            ax.legend(fontsize="small")
    return figure


def plot_sweep(
    sweep_dir: Path,
    metrics: Sequence[str] | None = None,
    out_dir: Path | None = None,
    tables: SweepTables | None = None,
    seed: int = 0,
) -> list[Path]:
    """Save curves.png, final_vs_rho.png and (when sharpness was measured)
    sharpness_vs_score.png into `out_dir` (default `<sweep_dir>/plots`); returns the files."""
    sweep_dir = Path(sweep_dir)
    tables = tables if tables is not None else compute_sweep_tables(sweep_dir, seed=seed)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir / "plots"
    written = [save(build_curves_figure(sweep_dir, tables, metrics, seed), out_dir / CURVES_FILE)]
    written.append(save(build_vs_rho_figure(tables.aggregate, tables.keys), out_dir / VS_RHO_FILE))
    scatter = build_scatter_figure(tables)
    if scatter is not None:
        written.append(save(scatter, out_dir / SCATTER_FILE))
    return written


def is_sweep_dir(path: Path) -> bool:
    """A sweep.json, or run directories below (and not a run directory itself)."""
    path = Path(path)
    if (path / SWEEP_FILE).is_file():
        return True
    return not is_run_dir(path) and bool(find_runs(path))
