"""The seed table's headline figure: per algorithm and optimizer choice, the difference of the
headline normalized score from all-Adam with its 95% CI; filled markers where the CI excludes 0.

Facets: one row of panels per network layout (actor/critic; actor/critic/imitator), one column
per dataset; in a panel, one colour per choice (samrl.results.styles), algorithms on the y
axis. Algorithms whose Adam baseline does not learn are greyed and named "no claim"."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from samrl.results.comparison import DEPENDS
from samrl.results.paper import algo_name
from samrl.results.seed_table import choice_networks, choice_order, headline_cells
from samrl.results.styles import network_colour

NO_CLAIM_SHADE = "#EEEEEE"


def build_seed_table_figure(cells: pd.DataFrame) -> Figure:
    shown = headline_cells(cells)
    layouts = list(dict.fromkeys(choice_networks(a) for a in shown["algo.name"]))
    datasets = list(dict.fromkeys(shown["dataset.name"]))
    heights = [
        len({a for a in shown["algo.name"] if choice_networks(a) == nets}) for nets in layouts
    ]
    figure = Figure(
        # the legend sits right of each panel: 8 inches keep the panel and the title whole
        figsize=(8.0 * max(1, len(datasets)), 1.4 + 0.75 * sum(heights) + 1.1 * len(layouts)),
        layout="constrained",
    )
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(
        max(1, len(layouts)),
        max(1, len(datasets)),
        height_ratios=[h + 1.2 for h in heights] or None,
    )
    for i, nets in enumerate(layouts):
        for j, dataset in enumerate(datasets):
            # one x scale for every panel: a difference of 10 points looks the same everywhere
            ax = figure.add_subplot(grid[i, j], sharex=figure.axes[0] if figure.axes else None)
            rows = shown[
                (shown["dataset.name"] == dataset)
                & shown["algo.name"].map(lambda a, nets=nets: choice_networks(a) == nets)
            ]
            _panel(ax, rows, "/".join(nets))
            ax.set_title(f"{dataset}: choices written {'/'.join(nets)}", fontsize="medium")
    figure.suptitle(
        "SAM vs all-Adam: Δ headline normalized score (IQM, 95% CI, n seeds)\n"
        "headline = mean of the evaluations in the last 20% of training, at least 3\n"
        "filled: CI excludes 0; diamond: its direction depends on the scored step (no claim)\n"
        "grey rows: no claim (their Adam baseline does not learn, or is not assessed)",
        fontsize="medium",
    )
    return figure


def _learns(rows: pd.DataFrame, algo: str) -> bool:
    """Whether the row's Adam baseline learns (older tables: its first cell's claim)."""
    column = "adam_learns" if "adam_learns" in rows else "claim"
    return bool(rows.loc[rows["algo.name"] == algo, column].iloc[0])


def _depends(cells: pd.DataFrame) -> np.ndarray:
    if "sensitivity" not in cells:
        return np.zeros(len(cells), dtype=bool)
    return (cells["sensitivity"] == DEPENDS).to_numpy()


def _markers(ax: Axes, cells: pd.DataFrame, centre: np.ndarray, y: np.ndarray, colour: str) -> None:
    """Filled where the CI excludes 0, hollow where it does not, a hollow diamond where the
    direction depends on the scored step."""
    excludes = ((cells["diff_ci_low"] > 0) | (cells["diff_ci_high"] < 0)).to_numpy()
    sensitive = _depends(cells)
    filled, hollow = excludes & ~sensitive, ~excludes
    ax.scatter(centre[filled], y[filled], color=colour, s=36, zorder=3)
    ax.scatter(centre[hollow], y[hollow], facecolor="white", edgecolor=colour, s=36, zorder=3)
    ax.scatter(
        centre[sensitive],
        y[sensitive],
        marker="D",
        facecolor="white",
        edgecolor=colour,
        s=30,
        zorder=3,
    )


def _panel(ax: Axes, rows: pd.DataFrame, layout: str) -> None:
    algos = list(dict.fromkeys(rows["algo.name"]))
    choices = [c for c in choice_order(algos[0])[1:] if c in set(rows["choice"])] if algos else []
    choices += [c for c in dict.fromkeys(rows["choice"]) if c not in choices]
    width = 0.7 / max(1, len(choices))
    handles = []
    for k, choice in enumerate(choices):
        these = rows[rows["choice"] == choice]
        nets = [n for n in these["sam_networks"].iloc[0].split("+") if n]
        colour = network_colour(nets)
        y = (
            np.array([algos.index(a) for a in these["algo.name"]])
            + (k - (len(choices) - 1) / 2) * width
        )
        centre = these["diff"].to_numpy(float)
        below = np.clip(centre - these["diff_ci_low"].to_numpy(float), 0, None)
        above = np.clip(these["diff_ci_high"].to_numpy(float) - centre, 0, None)
        ax.errorbar(centre, y, xerr=[below, above], fmt="none", ecolor=colour, elinewidth=1.6)
        _markers(ax, these, centre, y, colour)
        handles.append(
            Line2D([], [], color=colour, marker="o", label=f"{choice} (SAM on {'+'.join(nets)})")
        )
    for index, algo in enumerate(algos):
        if not _learns(rows, algo):
            ax.axhspan(index - 0.45, index + 0.45, color=NO_CLAIM_SHADE, zorder=0)
    labels = []
    for algo in algos:
        algo_rows = rows[rows["algo.name"] == algo]
        n = "/".join(str(v) for v in dict.fromkeys(algo_rows["n"]))
        claim = _learns(rows, algo)
        labels.append(f"{algo_name(algo)} (n={n})" + ("" if claim else "\nno claim"))
    ax.set_yticks(range(len(algos)), labels)
    for tick, algo in zip(ax.get_yticklabels(), algos, strict=True):
        if not _learns(rows, algo):
            tick.set_color("dimgrey")
    ax.set_ylim(len(algos) - 0.5, -0.5)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("Δ headline normalized score vs all-Adam (points)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        fontsize="small",
        title=f"choice ({layout})",
        title_fontsize="small",
    )
