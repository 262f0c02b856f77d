"""The corruption table's figure: per data condition (x), the headline normalized score and the
sharpness at the fixed radius of each probed network, IQM over runs with its 95% CI.

One panel per quantity; in each, four series at most: algorithm (marker and line style) x
optimizer (colour: Adam black, SAM the colour of the networks it steps, as everywhere in
samrl). Lines join the conditions of one series only to guide the eye."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from samrl.metrics import side_sharpness_name, side_sharpness_networks
from samrl.results.paper import algo_name
from samrl.results.styles import ADAM_COLOUR, network_colour

MARKERS = ("o", "s", "^", "D")
LINESTYLES = ("-", "--", ":", "-.")


def _networks(setting: str) -> list[str]:
    """The networks of a SAM setting "SAM rho 0.05 on critic"."""
    return setting.rsplit(" on ", 1)[-1].split("+") if " on " in setting else []


def build_corruption_figure(cells: pd.DataFrame) -> Figure:
    nets = side_sharpness_networks(cells.columns)
    radius = cells["probe_rho"].dropna().iloc[0] if "probe_rho" in cells and len(cells) else None
    score = ("headline normalized score", "normalized score (0-100)", "adam_iqm", "sam_iqm")
    panels = [score] + [
        (
            f"{net} sharpness at rho {radius:g}" if radius else f"{net} sharpness",
            "L(w + eps) − L(w)",
            side_sharpness_name("adam", net),
            side_sharpness_name("sam", net),
        )
        for net in nets
    ]
    conditions = list(dict.fromkeys(cells["condition"]))
    figure = Figure(
        figsize=(max(7.5, 4.2 * len(panels)), 4.4 if len(conditions) <= 4 else 5.0),
        layout="constrained",
    )
    FigureCanvasAgg(figure)
    for k, (title, unit, adam_key, sam_key) in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), k + 1)
        _panel(ax, cells, conditions, adam_key, sam_key)
        ax.set_title(title, fontsize="medium")
        ax.set_ylabel(unit, fontsize="small")
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small")
    figure.suptitle(
        "Clean and corrupted data: IQM over seeds with 95% CI (n per point in the table)\n"
        "headline score: mean of the evaluations in the last 20% of training (at least 3)",
        fontsize="medium",
    )
    return figure


def _panel(
    ax: Axes, cells: pd.DataFrame, conditions: list[str], adam_key: str, sam_key: str
) -> None:
    algos = list(dict.fromkeys(cells["algo.name"]))
    offsets = np.linspace(-0.15, 0.15, 2 * len(algos)) if algos else []
    series = 0
    for a, algo in enumerate(algos):
        rows = cells[cells["algo.name"] == algo]
        setting = next((s for s in rows["sam"] if s), "")
        for side, key in (("Adam", adam_key), ("SAM", sam_key)):
            if key not in rows or (side == "SAM" and not setting):
                continue  # no SAM runs of this algorithm yet
            # Adam is the same runs in every SAM setting's row: one point per condition
            shown = rows.drop_duplicates("condition") if side == "Adam" else rows
            x = np.array([conditions.index(c) for c in shown["condition"]]) + offsets[series]
            series += 1
            centre = shown[key].to_numpy(float)
            low = shown[f"{key}_ci_low"].to_numpy(float)
            high = shown[f"{key}_ci_high"].to_numpy(float)
            colour = ADAM_COLOUR if side == "Adam" else network_colour(_networks(setting))
            label = f"{algo_name(algo)} " + (side if side == "Adam" else setting)
            ax.errorbar(
                x,
                centre,
                yerr=[np.clip(centre - low, 0, None), np.clip(high - centre, 0, None)],
                color=colour,
                marker=MARKERS[a % len(MARKERS)],
                linestyle=LINESTYLES[a % len(LINESTYLES)],
                linewidth=1.0,
                label=label,
            )
    ax.set_xticks(range(len(conditions)), [c.replace(" ", "\n", 1) for c in conditions])
    ax.grid(alpha=0.3)
