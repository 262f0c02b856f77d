"""A sweep's figures on the facet layout of samrl.results.facets: rows = algorithm, columns =
dataset or network set, at most MAX_LINES lines per panel and legend entries per figure.

- `build_metric_figure`: one metric against training steps, mean over seeds per grid point
  with a 95% bootstrap band (completed and running runs, as in aggregate.csv);
- `build_final_figure`: a final metric's IQM with its 95% CI against rho (Adam a horizontal
  black line), or per variant where rho does not vary;
- `build_scatter_figure`: a sharpness measure against the final score, one point per run,
  colour = the networks SAM steps, marker = dataset; columns = sharpness measures;
- `build_profile_figure`: performance profiles of the final score;
- `build_improvement_figure`: P(improvement) over the baseline with its 95% CI.
Error bars have no caps, so that each series is one line object.
"""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from samrl.metrics import is_sharpness_summary, without_last10
from samrl.results import plots, stats
from samrl.results.aggregate import SweepTables, compute_sweep_tables, grid_points
from samrl.results.facets import (
    MARKERS,
    MAX_LINES,
    FacetFigure,
    LineStyle,
    facet_layout,
    networks_of,
)
from samrl.results.paper import algo_name
from samrl.results.plots import (
    CURVE_STATUSES,
    IMPROVEMENT_FILE,
    PROFILE_FILE,
    SCATTER_FILE,
    VS_RHO_FILE,
    _comparable,
    mean_with_band,
    metric_title,
    metric_unit,
    read_curve,
    resolve_metrics,
    sweep_metrics,
    vs_rho_columns,
)
from samrl.results.runs import run_path
from samrl.results.styles import ADAM_COLOUR, network_colour, network_label
from samrl.sam.variants import is_base
from samrl.status import RunStatus

PANEL_W, PANEL_H = 3.6, 2.6
MIN_WIDTH = 7.5  # room for a legend of three columns below the panels
WRAP_AFTER, WRAP_COLUMNS = 3, 4
STEP_LABEL = "training step"
TITLE_CHARS = 40


#: Characters of a "medium" (10 pt) title per inch of figure width, a little under DejaVu
#: Sans' average, so a wrapped line never runs past the figure's edges.
TITLE_CHARS_PER_INCH = 11


def _suptitle(figure: Figure, text: str, **kwargs: Any) -> None:
    """The figure's title, wrapped to its width: a two-panel figure is narrower than the
    longest titles, which matplotlib would otherwise cut at both edges."""
    width = int(figure.get_figwidth() * TITLE_CHARS_PER_INCH)
    lines = [textwrap.fill(line, width) for line in text.split("\n")]
    figure.suptitle("\n".join(lines), **kwargs)


def _grid(
    facet: FacetFigure,
    columns: Sequence[str] | None = None,
    rows: Sequence[str] | None = None,
    share_y: bool = True,
) -> tuple[Figure, dict]:
    """Axes by (row, column): rows = algorithms (all of the facet's, or those given), columns
    as given. A single column of more than WRAP_AFTER algorithms is wrapped into a grid of up
    to WRAP_COLUMNS columns instead of one tall strip. Each panel's title names its algorithm
    (when there are several) and its column; the panels of one algorithm share their y
    scale unless `share_y` is False (a categorical y axis, whose ticks differ per panel)."""
    columns = list(columns if columns is not None else facet.columns)
    rows = list(rows if rows is not None else facet.rows)
    cells = [(row, column) for row in rows for column in columns]
    wrap = len(columns) == 1 and len(rows) > WRAP_AFTER
    n_cols = min(WRAP_COLUMNS, len(cells)) if wrap else len(columns)
    n_rows = math.ceil(len(cells) / n_cols) if wrap else len(rows)
    figure = Figure(
        figsize=(max(MIN_WIDTH, PANEL_W * n_cols + 0.6), PANEL_H * n_rows + 1.3),
        layout="constrained",
    )
    FigureCanvasAgg(figure)
    axes: dict[tuple[str, str], Axes] = {}
    if facet.panels and not wrap:  # no panel where an algorithm has no run on a dataset
        cells = [cell for cell in cells if cell in facet.panels]
    for k, (row, column) in enumerate(cells):
        r, c = divmod(k, n_cols) if wrap else (rows.index(row), columns.index(column))
        first = next((a for (r_, _), a in axes.items() if r_ == row), None) if share_y else None
        ax = figure.add_subplot(n_rows, n_cols, r * n_cols + c + 1, sharey=first)
        axes[(row, column)] = ax
        several = len(facet.rows) > 1  # name the algorithm even when one row is kept
        parts = [t for t in (row if several else "", column) if t]
        # a long title (a measure's name beside the algorithm) takes two lines, not its
        # neighbour's space
        title = ("\n" if sum(map(len, parts)) > TITLE_CHARS else " · ").join(parts)
        ax.set_title(title, fontsize="medium", fontweight="bold" if several else "normal")
        ax.grid(alpha=0.3)
    return figure, axes


def _legend(figure: Figure, axes: dict, handles: dict[str, Line2D] | None = None) -> None:
    """One legend below the panels when it has at most MAX_LINES entries, else one legend per
    column (in its top panel), each then holding that column's lines only."""
    if handles is None:
        handles = {}
        for ax in axes.values():
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                if not label.startswith("_"):
                    handles.setdefault(label, handle)
    if not handles:
        return
    if len(handles) <= MAX_LINES:
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=min(3, len(handles)),
            fontsize="small",
        )
        return
    seen: set[str] = set()
    for (_, column), ax in axes.items():
        if column in seen:
            continue
        seen.add(column)
        column_handles = {
            label: handle
            for a in (a for (_, c), a in axes.items() if c == column)
            for handle, label in zip(*a.get_legend_handles_labels(), strict=True)
        }
        ax.legend(list(column_handles.values()), list(column_handles), fontsize="x-small")


def _runs_of(tables: SweepTables) -> list[pd.DataFrame]:
    return [runs for _, runs in grid_points(tables.summary, tables.keys)]


def build_metric_figure(
    sweep_dir: Path,
    tables: SweepTables,
    metric: str,
    file_name: str,
    facet: FacetFigure,
    seed: int = 0,
) -> Figure:
    """`metric` against training steps; one line (mean over seeds) and band per grid point.
    Algorithms none of whose runs log the metric (BEAR's MMD loss in a sweep of many
    algorithms) get no row; an empty panel in a row that has one says so."""

    curves_by_point = _curves_by_point(sweep_dir, tables, metric, file_name, facet)
    rows = [
        row
        for row in facet.rows
        if any(
            curves_by_point[i] for (r, _), p in facet.panels.items() if r == row for i in p.points
        )
    ]
    figure, axes = _grid(facet, rows=rows or facet.rows)
    for (row, column), ax in axes.items():
        panel = facet.panel(row, column)
        for i in panel.points if panel else []:
            if curves_by_point[i]:
                _plot_mean_curve(ax, curves_by_point[i], facet.styles[i], seed)
        if not ax.lines:
            ax.text(
                0.5,
                0.5,
                "no run has\nthis metric yet",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="grey",
            )
        ax.set_xlabel(STEP_LABEL)
        ax.set_ylabel(metric_unit(metric), fontsize="small")
    _legend(figure, axes)
    _suptitle(
        figure,
        f"{facet.title}{metric_title(metric)}: mean over seeds, 95% bootstrap band",
        fontsize="medium",
    )
    return figure


def _curves_by_point(
    sweep_dir: Path, tables: SweepTables, metric: str, file_name: str, facet: FacetFigure
) -> dict[int, list[pd.Series]]:
    """Grid point -> the non-empty curves of `metric` of its runs that have curves (completed
    and running ones), for every point the figure's panels show."""
    runs_by_point = _runs_of(tables)
    curves_by_point: dict[int, list[pd.Series]] = {}
    for panel in facet.panels.values():
        for i in panel.points:
            curves = [
                read_curve(run_path(sweep_dir, r.run_dir), metric, file_name)
                for r in runs_by_point[i].itertuples()
                if r.status in CURVE_STATUSES
            ]
            curves_by_point[i] = [c for c in curves if len(c)]
    return curves_by_point


def _plot_mean_curve(ax: Axes, curves: list[pd.Series], style: LineStyle, seed: int) -> None:
    """One grid point's line: the mean over its runs' curves, with the 95% bootstrap band
    where there are several."""
    matrix = pd.concat(curves, axis=1).sort_index()
    mean, low, high = mean_with_band(matrix.to_numpy(dtype=float).T, seed=seed)
    ax.plot(
        matrix.index,
        mean,
        color=style.colour,
        linestyle=style.linestyle,
        label=style.label,
        linewidth=1.4,
    )
    if len(curves) > 1:
        ax.fill_between(matrix.index, low, high, color=style.colour, alpha=0.15)


def _yerr(rows: pd.DataFrame, column: str) -> np.ndarray:
    centre = rows[f"{column}_iqm"].to_numpy(float)
    below = centre - rows[f"{column}_ci_low"].to_numpy(float)
    above = rows[f"{column}_ci_high"].to_numpy(float) - centre
    return np.clip(np.vstack([below, above]), 0.0, None)


def build_final_figure(tables: SweepTables, column: str, facet: FacetFigure) -> Figure:
    """IQM [95% CI] of `column` (an aggregate metric) per grid point: against rho where the
    panel's SAM points differ in rho (one series per line style, Adam a black line), else one
    point per variant."""

    aggregate = tables.aggregate
    if facet.panels and all(len(p.points) == 1 for p in facet.panels.values()):
        return _final_by_algorithm(tables, column, facet)
    figure, axes = _grid(facet)
    for (row, col), ax in axes.items():
        panel = facet.panel(row, col)
        if panel is None:
            continue
        rows = aggregate.iloc[panel.points]
        sam = [i for i in panel.points if not is_base(aggregate.iloc[i]["optim.name"])]
        rhos = pd.to_numeric(aggregate.iloc[sam]["optim.rho"], errors="coerce")
        if rhos.nunique() > 1:
            _against_rho(ax, aggregate, panel.points, facet.styles, column)
        else:
            for x, i in enumerate(panel.points):
                style = facet.styles[i]
                ax.errorbar(
                    [x],
                    aggregate.iloc[[i]][f"{column}_iqm"],
                    yerr=_yerr(aggregate.iloc[[i]], column),
                    fmt=style.marker,
                    color=style.colour,
                    label=style.label,
                )
            ax.set_xticks(range(len(rows)), [facet.styles[i].label for i in panel.points])
            ax.tick_params(axis="x", labelrotation=30, labelsize="small")
        ax.set_ylabel(metric_unit(column), fontsize="small")
    _legend(figure, axes)
    _suptitle(
        figure, f"{facet.title}{metric_title(column)} (IQM over seeds, 95% CI)", fontsize="medium"
    )
    return figure


def _final_by_algorithm(tables: SweepTables, column: str, facet: FacetFigure) -> Figure:
    """One point per algorithm (a sweep of one optimizer variant, e.g. a pilot of Adam
    baselines): one panel per column with the algorithms along x, rather than a panel each."""

    aggregate = tables.aggregate
    width = max(MIN_WIDTH / max(1, len(facet.columns)), 0.7 * len(facet.rows) + 1.5)
    figure = Figure(figsize=(width * len(facet.columns), PANEL_H + 1.6), layout="constrained")
    FigureCanvasAgg(figure)
    first = None
    for c, col in enumerate(facet.columns):
        ax = figure.add_subplot(1, len(facet.columns), c + 1, sharey=first)
        first = first or ax
        rows = [r for r in facet.rows if facet.panel(r, col) is not None]
        index = [facet.panels[(r, col)].points[0] for r in rows]
        values = aggregate.iloc[index]
        # one errorbar call for the whole panel: one line object, whatever the algorithms
        ax.errorbar(
            range(len(rows)),
            values[f"{column}_iqm"],
            yerr=_yerr(values, column),
            fmt="none",
            ecolor="dimgrey",
        )
        for x, i in enumerate(index):
            style = facet.styles[i]
            ax.scatter([x], [aggregate.iloc[i][f"{column}_iqm"]], color=style.colour, zorder=3)
        ax.set_xticks(range(len(rows)), rows, rotation=30, ha="right")
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_title(col, fontsize="medium")
        ax.set_ylabel(metric_unit(column), fontsize="small")
        ax.grid(alpha=0.3)
    labels = list(dict.fromkeys(s.label for s in facet.styles.values()))
    _suptitle(
        figure,
        f"{facet.title}{metric_title(column)} (IQM over seeds, 95% CI): {', '.join(labels)}",
        fontsize="medium",
    )
    return figure


def _against_rho(
    ax: Axes, aggregate: pd.DataFrame, points: list[int], styles: dict, column: str
) -> None:
    series: dict[tuple[str, str], list[int]] = {}
    for i in points:
        style = styles[i]
        if is_base(aggregate.iloc[i]["optim.name"]):
            ax.axhline(
                aggregate.iloc[i][f"{column}_iqm"],
                color=ADAM_COLOUR,
                linestyle=style.linestyle if style.linestyle != "-" else "--",
                label=style.label,
                linewidth=1.2,
            )
        else:
            series.setdefault((style.linestyle, style.marker), []).append(i)
    for (linestyle, marker), members in series.items():
        rows = aggregate.iloc[members].assign(_rho=lambda f: f["optim.rho"].astype(float))
        order = np.argsort(rows["_rho"].to_numpy())
        rows = rows.iloc[order]
        ax.errorbar(
            rows["_rho"],
            rows[f"{column}_iqm"],
            yerr=_yerr(rows, column),
            color="dimgrey",
            linestyle=linestyle,
            marker="none",
            zorder=1,
        )
        for index, (_, r) in zip(np.asarray(members)[order], rows.iterrows(), strict=True):
            style = styles[int(index)]
            ax.scatter(
                [r["_rho"]],
                [r[f"{column}_iqm"]],
                color=style.colour,
                marker=marker,
                zorder=3,
                label=style.label,
            )
    sam_rows = [i for i in points if not is_base(aggregate.iloc[i]["optim.name"])]
    rhos = sorted({float(v) for v in aggregate.iloc[sam_rows]["optim.rho"] if not pd.isna(v)})
    positive = [r for r in rhos if r > 0]
    if positive:
        ax.set_xscale("symlog", linthresh=min(positive))
        ax.set_xticks(rhos, [f"{r:g}" for r in rhos])
        ax.minorticks_off()
    ax.set_xlabel("rho (SAM radius)")


def _point_networks(aggregate: pd.DataFrame, i: int) -> list[str]:
    row = aggregate.iloc[i]
    if is_base(row["optim.name"]):
        return []
    return list(networks_of(row.get("optim.networks")) or ("actor", "critic"))


def build_scatter_figure(tables: SweepTables, columns: Sequence[str], score: str) -> Figure | None:
    """Each sharpness column against the final score, one point per completed run: rows =
    algorithm, columns = sharpness measure; colour = the networks SAM steps (Adam black),
    marker = dataset."""

    aggregate = tables.aggregate
    if not columns:
        return None
    algos = list(dict.fromkeys(aggregate["algo.name"])) if "algo.name" in aggregate else [""]
    datasets = (
        list(dict.fromkeys(aggregate["dataset.name"])) if "dataset.name" in aggregate else [""]
    )
    facet = FacetFigure(
        "", "", [algo_name(a) for a in algos], [metric_title(c) for c in columns], {}, {}
    )
    figure, axes = _grid(facet)
    handles: dict[str, Line2D] = {}
    for i, runs in enumerate(_runs_of(tables)):
        done = runs[runs["status"] == RunStatus.COMPLETED]
        if done.empty:
            continue
        nets = _point_networks(aggregate, i)
        colour = network_colour(nets)
        row = aggregate.iloc[i]
        d = datasets.index(row["dataset.name"]) if "dataset.name" in row else 0
        marker = MARKERS[d % len(MARKERS)]
        label = network_label(nets)
        handles.setdefault(
            label, Line2D([], [], color=colour, marker="o", linestyle="none", label=label)
        )
        if len(datasets) > 1:
            name = str(datasets[d])
            handles.setdefault(
                name, Line2D([], [], color="grey", marker=marker, linestyle="none", label=name)
            )
        for column in columns:
            ax = axes[(algo_name(row.get("algo.name", "")), metric_title(column))]
            ax.scatter(done[column], done[score], color=colour, marker=marker, s=22, alpha=0.8)
    for (_, title), ax in axes.items():
        column = columns[[metric_title(c) for c in columns].index(title)]
        ax.set_xlabel(metric_unit(column), fontsize="small")
        ax.set_ylabel(metric_unit(score), fontsize="small")
    _legend(figure, axes, handles)
    _suptitle(
        figure,
        f"Sharpness against {metric_title(score).lower()}\none point per run",
        fontsize="medium",
    )
    return figure


def build_profile_figure(
    tables: SweepTables, score: str, facet: FacetFigure, n_boot: int = 1000, seed: int = 0
) -> Figure | None:
    """Performance profiles of the final score per grid point (fraction of completed runs above
    each threshold, 95% bootstrap band)."""

    summary = tables.summary
    done = summary[summary["status"] == RunStatus.COMPLETED]
    values = pd.to_numeric(done[score], errors="coerce").dropna()
    if values.empty:
        return None
    taus = np.linspace(float(values.min()), float(values.max()), 101)
    figure, axes = _grid(facet)
    runs_by_point = _runs_of(tables)
    for (row, column), ax in axes.items():
        panel = facet.panel(row, column)
        for i in panel.points if panel else []:
            runs = runs_by_point[i]
            scores = pd.to_numeric(
                runs.loc[runs["status"] == RunStatus.COMPLETED, score], errors="coerce"
            )
            scores = scores.dropna().to_numpy(float)
            if not scores.size:
                continue
            style = facet.styles[i]
            fraction, low, high = stats.performance_profile(scores, taus, n_boot=n_boot, seed=seed)
            ax.plot(
                taus, fraction, color=style.colour, linestyle=style.linestyle, label=style.label
            )
            ax.fill_between(taus, low, high, color=style.colour, alpha=0.12)
        ax.set_xlabel(f"threshold: {metric_unit(score)}", fontsize="small")
        ax.set_ylabel("fraction of runs above", fontsize="small")
    _legend(figure, axes)
    _suptitle(
        figure,
        f"{facet.title}Performance profile of the {metric_title(score).lower()} (95% CI)",
        fontsize="medium",
    )
    return figure


def build_improvement_figure(tables: SweepTables, facet: FacetFigure) -> Figure | None:
    """P(improvement) of each grid point over its baseline with its 95% CI; 0.5 = no
    difference."""

    aggregate = tables.aggregate
    if "prob_improvement" not in aggregate or aggregate["prob_improvement"].isna().all():
        return None
    # each panel lists its own grid points on y: a shared y axis would let the last panel's
    # ticks and limits replace the others' (an algorithm on two datasets lost its points)
    figure, axes = _grid(facet, share_y=False)
    for (row, column), ax in axes.items():
        panel = facet.panel(row, column)
        shown = [
            i
            for i in (panel.points if panel else [])
            if not pd.isna(aggregate.iloc[i]["prob_improvement"])
        ]
        for y, i in enumerate(shown):
            r = aggregate.iloc[i]
            centre = float(r["prob_improvement"])
            low, high = float(r["prob_improvement_ci_low"]), float(r["prob_improvement_ci_high"])
            xerr = None
            if math.isfinite(low) and math.isfinite(high):
                xerr = [[max(0.0, centre - low)], [max(0.0, high - centre)]]
            style = facet.styles[i]
            ax.errorbar(
                centre, y, xerr=xerr, fmt=style.marker, color=style.colour, label=style.label
            )
        ax.set_yticks(range(len(shown)), [facet.styles[i].label for i in shown], fontsize="small")
        ax.set_ylim(-0.6, max(len(shown), 1) - 0.4)
        ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("P(better than the baseline)", fontsize="small")
    score = str(aggregate["prob_improvement_metric"].iloc[0])
    _suptitle(
        figure,
        f"{facet.title}Probability of improvement over the baseline, "
        f"{metric_title(score).lower()} (95% CI)",
        fontsize="medium",
    )
    return figure


def plot_sweep(
    sweep_dir: Path,
    metrics: Sequence[str] | None = None,
    out_dir: Path | None = None,
    tables: SweepTables | None = None,
    seed: int = 0,
) -> list[Path]:
    """Save a sweep's figures into `out_dir` (default `<sweep_dir>/plots`), each on the facet
    layout of samrl.results.facets (rows = algorithm, columns = dataset or network set, at
    most 6 lines per panel and legend entries per figure), per layout figure (a study whose
    datasets do not fit one figure gets one per dataset, `_<dataset>` in the name):
    score_vs_steps, curves_<metric> (each other metric; with `metrics`, those only),
    final_vs_rho (the score) and final_vs_rho_<sharpness> (fixed-radius sharpness when
    measured), performance_profile, prob_improvement; then sharpness_vs_score. Returns the
    PNG files (each has a PDF beside it)."""
    figures = sys.modules[__name__]
    sweep_dir = Path(sweep_dir)
    tables = tables if tables is not None else compute_sweep_tables(sweep_dir, seed=seed)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir / "plots"
    available = sweep_metrics(sweep_dir, tables)
    chosen = resolve_metrics(metrics, list(available))
    score_curve = [m for m in ("normalized_score", "return_mean") if m in available][:1]
    if metrics is None:
        chosen = [*score_curve, *(m for m in chosen if m not in score_curve)]
    score, *sharpness = vs_rho_columns(tables.aggregate)
    written: list[Path] = []
    for facet in facet_layout(tables.aggregate, tables.keys):
        end = f"{facet.suffix}.png"
        for metric in chosen:
            name = (
                "score_vs_steps"
                if metrics is None and [metric] == score_curve
                else f"curves_{metric}"
            )
            figure = figures.build_metric_figure(
                sweep_dir, tables, metric, available[metric], facet, seed
            )
            written.append(plots.save(figure, out_dir / f"{name}{end}"))
        figure = figures.build_final_figure(tables, score, facet)
        written.append(plots.save(figure, out_dir / f"{VS_RHO_FILE.removesuffix('.png')}{end}"))
        for column in sharpness:
            figure = figures.build_final_figure(tables, column, facet)
            written.append(
                plots.save(figure, out_dir / f"final_vs_rho_{without_last10(column)}{end}")
            )
        profile = figures.build_profile_figure(tables, score, facet, seed=seed)
        if profile is not None:
            name = f"{PROFILE_FILE.removesuffix('.png')}{end}"
            written.append(plots.save(profile, out_dir / name))
        improvement = figures.build_improvement_figure(tables, facet)
        if improvement is not None:
            name = f"{IMPROVEMENT_FILE.removesuffix('.png')}{end}"
            written.append(plots.save(improvement, out_dir / name))
    scatter_columns = _comparable(
        [c for c in tables.summary if is_sharpness_summary(c) and tables.summary[c].notna().any()]
    )
    scatter = figures.build_scatter_figure(tables, scatter_columns, score)
    if scatter is not None:
        written.append(plots.save(scatter, out_dir / SCATTER_FILE))
    return written
