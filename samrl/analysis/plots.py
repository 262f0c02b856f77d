"""PNG plots of one run or of a sweep (matplotlib, Agg, no pyplot global state).

Each plot has a `build_*` function returning the `Figure` (tests count its axes and lines) and
the `plot_*` functions save them. A metric is a column of loss.csv, sharpness.csv or eval.csv
(`critic_loss`, `critic_sharpness`, `return_mean`, ...), plotted against the training step.

Sweep learning curves average the seeds of a grid point step by step (runs that are still
running contribute the steps they have; failed and diverged runs are left out, as in
aggregate.csv) with a percentile bootstrap 95% band for the mean over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from samrl.errors import RunError, SamrlError, unknown_name
from samrl.metrics import (
    SHARPNESS,
    WORST_CASE,
    fixed_radius_parts,
    is_fixed_radius,
    is_headline,
    is_sharpness,
    is_sharpness_summary,
    sam_metric_of,
    without_last10,
)
from samrl.networks import TITLES
from samrl.results.aggregate import (
    OPTIM_KEYS,
    SweepTables,
    compute_sweep_tables,
    grid_points,
)
from samrl.results.runs import (
    find_runs,
    is_run_dir,
    read_config,
    read_run_table,
    run_path,
)
from samrl.rundir import METRIC_FILES, SWEEP_FILE
from samrl.sam.variants import BASE_NAMES
from samrl.status import RunStatus

INDEX_COLUMNS = ("epoch", "step")
#: Run statuses whose curves enter the sweep means.
CURVE_STATUSES = (RunStatus.COMPLETED, RunStatus.RUNNING)
CURVE_BAND_BOOT = 1000
CURVES_FILE = "curves.png"
VS_RHO_FILE = "final_vs_rho.png"
SCATTER_FILE = "sharpness_vs_score.png"
SCORE_CURVES_FILE = "score_vs_steps.png"
PROFILE_FILE = "performance_profile.png"
IMPROVEMENT_FILE = "prob_improvement.png"
SHARPNESS_CURVES_FILE = "sharpness_vs_steps.png"


# --------------------------------------------------------------------------- metrics


def run_metrics(run_dir: Path) -> dict[str, str]:
    """Metric name -> the CSV file holding it, for every column with at least one value."""
    found: dict[str, str] = {}
    for file_name in METRIC_FILES:
        frame = read_run_table(Path(run_dir), file_name)
        for column in frame.columns:
            if column not in INDEX_COLUMNS and frame[column].notna().any():
                found.setdefault(column, file_name)
    return found


def default_metrics(available: Sequence[str]) -> list[str]:
    """Loss terms, `<net>_sharpness` and the evaluation return / normalized score."""
    # Single-network algorithms (DQN family, BC, decision transformers) report plain "loss".
    chosen = [m for m in available if is_headline(m)]
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
    frame = read_run_table(Path(run_dir), file_name)
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
    """The PNG at `out` and a PDF beside it (for papers); returns the PNG."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    figure.savefig(out.with_suffix(".pdf"))
    return out


STEP_LABEL = "training step (gradient updates)"
LEGEND_COLUMN_IN = 4.4  # width of one legend column of grid-point labels at the small font


def metric_title(metric: str) -> str:
    """Readable panel title: "Critic sharpness at rho=0.05", "Return", "Critic loss"."""
    name = without_last10(metric)
    fixed = fixed_radius_parts(name)
    if fixed:
        net, rho, posthoc = fixed
        where = "post hoc, " if posthoc else ""
        return f"{TITLES.get(net, net)} sharpness ({where}fixed rho={rho})"
    found = sam_metric_of(name)
    if found:
        net, what = found
        return f"{TITLES.get(net, net)} {what.title}"
    named = {
        "return_mean": "Return",
        "normalized_score": "Normalized score",
        "final_return": "Final return",
        "final_normalized_score": "Final normalized score",
        "loss": "Training loss",  # d3rlpy's own: TD for DQN, imitation for BC, action for DT
    }
    if name in named:
        return named[name]
    acronyms = {"bc": "BC", "td": "TD", "vae": "VAE", "mmd": "MMD", "cql": "CQL"}
    words = [acronyms.get(w, w) for w in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def metric_unit(metric: str) -> str:
    """The y-axis label, with units."""
    name = without_last10(metric)
    if "normalized_score" in name:
        return "normalized score (0-100)"
    if "return" in name:
        return "return per episode"
    if SHARPNESS.suffix in name or WORST_CASE in name:
        return SHARPNESS.unit
    found = sam_metric_of(name)
    if found:
        return found[1].unit
    return "loss (per minibatch, epoch mean)"


LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


@dataclasses.dataclass(frozen=True)
class PointStyle:
    label: str  # legend text
    color: str  # by optimizer variant: Adam black, SAM variants tab10 (same in every figure)
    linestyle: str  # by algorithm and dataset
    marker: str


def point_styles(aggregate: pd.DataFrame, keys: Sequence[str]) -> list[PointStyle]:
    """One style per grid point (aggregate row order). The colour says which optimizer
    variant (Adam, SAM actor rho=0.05, ...), the line style and marker which algorithm and
    dataset, so a variant has the same colour in every panel and every figure of a sweep."""
    from samrl.results.paper import algo_name, variant_labels

    variants = variant_labels(aggregate, keys)
    sam_variants = list(dict.fromkeys(v for v in variants if v != "Adam"))
    others = [
        k
        for k in ("algo.name", "dataset.name")
        if k in aggregate and aggregate[k].nunique(dropna=False) > 1
    ]
    groups = [tuple(row[k] for k in others) for _, row in aggregate.iterrows()]
    order = list(dict.fromkeys(groups))
    styles = []
    for variant, group in zip(variants, groups, strict=True):
        color = "black" if variant == "Adam" else f"C{sam_variants.index(variant) % 10}"
        where = " ".join(
            algo_name(v) if k == "algo.name" else str(v) for k, v in zip(others, group, strict=True)
        )
        i = order.index(group)
        styles.append(
            PointStyle(
                f"{where} | {variant}" if where else variant,
                color,
                LINESTYLES[i % len(LINESTYLES)],
                MARKERS[i % len(MARKERS)],
            )
        )
    return styles


def _legend_outside(figure: Figure, axes: Sequence[Axes]) -> None:
    """One legend for the whole figure, right of the panels (never over the data)."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("_"):
                handles.setdefault(label, handle)
    if handles:
        n_cols = min(3, len(handles))
        # The legend takes its room below the panels instead of squeezing them: a sweep with
        # 40 grid points needs ~14 rows, which collapsed a one-panel figure to nothing.
        width, height = figure.get_size_inches()
        rows = math.ceil(len(handles) / n_cols)
        figure.set_size_inches(max(width, LEGEND_COLUMN_IN * n_cols), height + 0.2 * rows + 0.2)
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=n_cols,
            fontsize="small",
        )


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
        if metric == "return_mean":  # the spread over evaluation episodes
            std = read_curve(run_dir, "return_std", available[metric]).reindex(curve.index)
            if std.notna().any():
                ax.fill_between(
                    curve.index, curve - std, curve + std, alpha=0.25, label="± std over episodes"
                )
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
    ax.set_title(metric_title(metric))
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel(metric_unit(metric))
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
    # One style per grid point in every panel and figure, even where a point lacks the metric.
    styles = point_styles(tables.aggregate, tables.keys)
    for ax, metric in zip(axes, chosen, strict=True):
        for (_, runs), style in zip(points, styles, strict=True):
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
            ax.plot(
                matrix.index,
                mean,
                color=style.color,
                linestyle=style.linestyle,
                label=f"{style.label} (n={len(curves)})",
            )
            if len(curves) > 1:
                ax.fill_between(matrix.index, low, high, color=style.color, alpha=0.2)
        _decorate(ax, metric)
    _legend_outside(figure, axes)
    figure.suptitle("Mean over seeds, 95% bootstrap band")
    return figure


def _comparable(columns: Sequence[str]) -> list[str]:
    """Sharpness measured at one fixed radius (probe columns, post-hoc worst case) when a sweep
    has it: sharpness at each run's own training rho is 0 at rho = 0 and grows with rho by
    construction, so it only stands in when nothing else was measured."""
    fixed = [c for c in columns if is_fixed_radius(c)]
    return fixed or list(columns)


def vs_rho_columns(aggregate: pd.DataFrame) -> list[str]:
    """Columns plotted against rho: the compared score and each network's sharpness (at the
    fixed radius when measured, else `<net>_sharpness_last10`)."""
    score = (
        str(aggregate["prob_improvement_metric"].iloc[0])
        if "prob_improvement_metric" in aggregate and len(aggregate)
        else "final_return"
    )
    sharpness = [
        c.removesuffix("_iqm")
        for c in aggregate
        if c.endswith("_iqm")
        and is_sharpness_summary(c.removesuffix("_iqm"))
        and aggregate[c].notna().any()
    ]
    return [score, *_comparable(sharpness)]


def build_vs_rho_figure(aggregate: pd.DataFrame, keys: Sequence[str]) -> Figure:
    """IQM with 95% CI error bars of the final score and final sharpness against rho.

    Adam points are dashed horizontal lines; several series when other grid keys vary. Without
    a rho grid key the x axis lists the grid points instead.
    """
    columns = vs_rho_columns(aggregate)
    figure, axes = new_figure(len(columns))
    sam = aggregate[~aggregate["optim.name"].eq("adam")]
    # A rho axis needs at least two radii to compare; otherwise (one run, only Adam, one rho)
    # the grid points are categories with their IQM and CI, never an empty axis.
    has_rho = "optim.rho" in keys and sam["optim.rho"].astype(float).nunique() >= 2
    for ax, column in zip(axes, columns, strict=True):
        if has_rho:
            _errorbars_vs_rho(ax, aggregate, keys, column)
            ax.set_xlabel("rho (SAM radius, symlog axis)")
        else:
            x = np.arange(len(aggregate))
            styles = point_styles(aggregate, keys)
            for xi, (_, row), style in zip(x, aggregate.iterrows(), styles, strict=True):
                ax.errorbar(
                    [xi],
                    [row[f"{column}_iqm"]],
                    yerr=_yerr(aggregate.loc[[row.name]], column),
                    fmt=style.marker,
                    color=style.color,
                    capsize=3,
                )
            ax.set_xticks(x, [s.label for s in styles], rotation=30, ha="right")
            ax.set_xlim(-0.5, len(aggregate) - 0.5)
        ax.set_title(f"{metric_title(column)}\n(IQM, 95% CI)", fontsize="medium")
        ax.set_ylabel(metric_unit(column))
        ax.grid(alpha=0.3)
    if sum(len(ax.get_legend_handles_labels()[0]) for ax in axes) > len(axes):
        _legend_outside(figure, axes)  # one series needs no legend
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
    is_adam = aggregate["optim.name"].isin(BASE_NAMES)
    others = aggregate[~is_adam]
    groups = (
        list(others.groupby(series_keys, dropna=False, sort=False))
        if series_keys
        else [((), others)]
    )
    for i, (values, rows) in enumerate(groups):
        rows = rows.sort_values("optim.rho")
        names = [
            _series_name(k, v) for k, v in zip(series_keys, np.atleast_1d(values), strict=True)
        ]
        label = " ".join(names) if len(groups) > 1 else str(rows["optim.name"].iloc[0])
        ax.errorbar(
            rows["optim.rho"].astype(float),
            rows[f"{column}_iqm"],
            yerr=_yerr(rows, column),
            marker="o",
            capsize=3,
            label=label,
            color=f"C{i % 10}",
        )
    adam = aggregate[is_adam]
    for j, (_, row) in enumerate(adam.iterrows()):
        where = [_series_name(k, row[k]) for k in series_keys if k in ("algo.name", "dataset.name")]
        label = " ".join([*where, "Adam"]) if len(adam) > 1 else "Adam"
        style = LINESTYLES[1 + j % (len(LINESTYLES) - 1)]
        ax.axhline(row[f"{column}_iqm"], linestyle=style, color="black", label=label)
    rhos = aggregate.loc[~is_adam, "optim.rho"].astype(float)
    positive = rhos[rhos > 0]
    if len(positive):
        # Geometric rho grids (0, 0.01, 0.05, 0.1): a linear axis squashes 0.01 against 0.
        ax.set_xscale("symlog", linthresh=float(positive.min()))
        ticks = sorted(set(rhos))
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()


def _series_name(key: str, value: Any) -> str:
    from samrl.results.paper import algo_name

    if key == "algo.name":
        return algo_name(str(value))
    if key == "optim.networks":
        nets = json.loads(value) if isinstance(value, str) else value
        return "SAM " + "+".join(nets) if isinstance(nets, list) else str(nets)
    if key == "optim.name":
        return str(value).upper()
    return str(value)


def build_scatter_figure(tables: SweepTables) -> Figure | None:
    """Final sharpness (at the fixed radius when measured) against final score, one point per
    completed run, one colour per grid point and one axes per network; None when no run
    measured sharpness."""
    summary = tables.summary
    score = vs_rho_columns(tables.aggregate)[0]
    columns = _comparable(
        [c for c in summary if is_sharpness_summary(c) and summary[c].notna().any()]
    )
    if not columns:
        return None
    figure, axes = new_figure(len(columns))
    points = grid_points(summary, tables.keys)
    styles = point_styles(tables.aggregate, tables.keys)
    for ax, column in zip(axes, columns, strict=True):
        for (_, runs), style in zip(points, styles, strict=True):
            done = runs[runs["status"] == RunStatus.COMPLETED]
            if len(done):
                ax.scatter(
                    done[column],
                    done[score],
                    label=style.label,
                    s=28,
                    color=style.color,
                    marker=style.marker,
                )
        ax.set_xlabel(f"{metric_title(column)}: {metric_unit(column)}")
        ax.set_ylabel(metric_unit(score))
        ax.set_title(f"{metric_title(column)} vs {metric_title(score).lower()}")
        ax.grid(alpha=0.3)
    _legend_outside(figure, axes)
    return figure


def build_profile_figure(tables: SweepTables, n_boot: int = 1000, seed: int = 0) -> Figure | None:
    """Performance profiles (rliable's run-score distributions) of the final score: per grid
    point, the fraction of completed runs above each threshold, with a 95% bootstrap band."""
    from samrl import stats

    summary = tables.summary
    score = vs_rho_columns(tables.aggregate)[0]
    done = summary[summary["status"] == RunStatus.COMPLETED]
    values = pd.to_numeric(done[score], errors="coerce").dropna()
    if values.empty:
        return None
    taus = np.linspace(float(values.min()), float(values.max()), 101)
    figure, (ax,) = new_figure(1, width=6.0, height=4.0)
    points = grid_points(summary, tables.keys)
    for (_, runs), style in zip(points, point_styles(tables.aggregate, tables.keys), strict=True):
        scores = pd.to_numeric(
            runs.loc[runs["status"] == RunStatus.COMPLETED, score], errors="coerce"
        )
        scores = scores.dropna().to_numpy(float)
        if not scores.size:
            continue
        fraction, low, high = stats.performance_profile(scores, taus, n_boot=n_boot, seed=seed)
        ax.plot(taus, fraction, color=style.color, linestyle=style.linestyle, label=style.label)
        ax.fill_between(taus, low, high, color=style.color, alpha=0.15)
    ax.set_xlabel(f"threshold tau: {metric_unit(score)}")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_title(f"Performance profile of the {metric_title(score).lower()} (95% CI)")
    ax.grid(alpha=0.3)
    _legend_outside(figure, [ax])
    return figure


def build_improvement_figure(tables: SweepTables) -> Figure | None:
    """P(improvement) of each grid point over its baseline (rho = 0 or Adam) with its 95% CI,
    rliable style: 0.5 means no difference."""
    aggregate = tables.aggregate
    if "prob_improvement" not in aggregate:
        return None
    rows = aggregate[aggregate["prob_improvement"].notna()]
    if rows.empty:
        return None
    styles = dict(zip(aggregate.index, point_styles(aggregate, tables.keys), strict=True))
    figure, (ax,) = new_figure(1, width=8.0, height=0.45 * len(rows) + 1.6)
    y = np.arange(len(rows))[::-1]
    for yi, (index, row) in zip(y, rows.iterrows(), strict=True):
        centre = float(row["prob_improvement"])
        low = float(row.get("prob_improvement_ci_low", np.nan))
        high = float(row.get("prob_improvement_ci_high", np.nan))
        xerr = None
        if np.isfinite(low) and np.isfinite(high):
            xerr = [[max(0.0, centre - low)], [max(0.0, high - centre)]]
        ax.errorbar(centre, yi, xerr=xerr, fmt="o", color=styles[index].color, capsize=3)
    ax.set_yticks(y, [f"{styles[i].label} vs {row['baseline']}" for i, row in rows.iterrows()])
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(-0.03, 1.03)
    score = str(aggregate["prob_improvement_metric"].iloc[0])
    ax.set_xlabel(f"P(better than the baseline), {metric_title(score).lower()}")
    ax.set_title("Probability of improvement (95% CI)")
    ax.grid(alpha=0.3, axis="x")
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
    if metrics is None:  # one figure per question, beside the all-metrics overview
        available = sweep_metrics(sweep_dir, tables)
        score = [m for m in ("normalized_score", "return_mean") if m in available][:1]
        if score:
            figure = build_curves_figure(sweep_dir, tables, score, seed)
            written.append(save(figure, out_dir / SCORE_CURVES_FILE))
        sharp = _comparable([m for m in available if is_sharpness(m)])
        if sharp:
            figure = build_curves_figure(sweep_dir, tables, sharp, seed)
            written.append(save(figure, out_dir / SHARPNESS_CURVES_FILE))
    written.append(save(build_vs_rho_figure(tables.aggregate, tables.keys), out_dir / VS_RHO_FILE))
    scatter = build_scatter_figure(tables)
    if scatter is not None:
        written.append(save(scatter, out_dir / SCATTER_FILE))
    profile = build_profile_figure(tables, seed=seed)
    if profile is not None:
        written.append(save(profile, out_dir / PROFILE_FILE))
    improvement = build_improvement_figure(tables)
    if improvement is not None:
        written.append(save(improvement, out_dir / IMPROVEMENT_FILE))
    return written


def is_sweep_dir(path: Path) -> bool:
    """A sweep.json, or run directories below (and not a run directory itself)."""
    path = Path(path)
    if (path / SWEEP_FILE).is_file():
        return True
    return not is_run_dir(path) and bool(find_runs(path))
