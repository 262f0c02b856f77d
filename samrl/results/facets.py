"""Facet layout of a sweep's figures, so that each reads at a glance: rows = algorithm,
columns = dataset (or, in a per-network rho study, the network SAM steps), at most
MAX_LINES lines per panel and legend entries per figure.

Which lines a panel holds:
- a per-network rho study (SAM on several network sets x several radii): columns are the
  network sets, lines are the radii plus Adam; datasets become line styles while that keeps
  MAX_LINES, else each dataset gets its own figure;
- otherwise columns are datasets and lines are the optimizer variants (network sets, radii or
  other grid values) plus Adam.
Where the data condition varies (clean against corrupted data), it is part of the column:
"random observations", or "<dataset>: random observations" with several datasets.
A panel that would still hold more than MAX_LINES lines is split over several columns.

Colours (samrl.results.styles): by network set (Adam black) when the lines are network sets
or one SAM variant, by radius when the lines are radii; the same everywhere in a sweep.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from samrl.results.labels import (
    CONDITION_KEYS,
    condition_of_point,
    condition_varies,
    group_key,
    is_missing,
    point_label,
    sam_networks,
)
from samrl.results.paper import algo_name
from samrl.results.styles import ADAM_COLOUR, OTHER_COLOUR, network_colour, rho_colour
from samrl.sam.variants import is_base

MAX_LINES = 6
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")
#: Grid keys a facet layout places itself; any other varying key is part of the line label.
PLACED = ("algo.name", "dataset.name", "optim.name", "optim.networks", "optim.rho")


@dataclass(frozen=True)
class LineStyle:
    label: str
    colour: str
    linestyle: str = "-"
    marker: str = "o"


@dataclass
class Panel:
    row: str  # algorithm, as shown
    column: str  # dataset or network set, as shown
    points: list[int] = field(default_factory=list)  # aggregate row positions


@dataclass
class FacetFigure:
    """One figure: its file suffix ("" or "_<dataset>"), title part, panels by (row, column)."""

    suffix: str
    title: str
    rows: list[str]
    columns: list[str]
    panels: dict[tuple[str, str], Panel]
    styles: dict[int, LineStyle]  # aggregate row position -> its line's style

    def panel(self, row: str, column: str) -> Panel | None:
        return self.panels.get((row, column))


def networks_of(value: Any) -> tuple[str, ...]:
    """An optim.networks value (a list, or its JSON text in summary tables) as sorted names."""
    if is_missing(value):
        return ()
    return tuple(sorted(sam_networks("sam", value)))


@dataclass(frozen=True)
class _Point:
    algo: str
    dataset: str
    sam: tuple[str, ...]  # networks SAM steps; () for Adam
    rho: float
    other: str  # other varying grid values, as text
    condition: str = ""  # the data condition, where it varies ("clean", "random observations")
    hidden: bool = False  # nothing to plot (a run not started: its dataset is unknown)

    @property
    def adam(self) -> bool:
        return not self.sam

    def place(self, several_datasets: bool) -> str:
        """The column text (or, in a network study, the line-style group) of the point's data."""
        if not self.condition:
            return self.dataset
        return f"{self.dataset}: {self.condition}" if several_datasets else self.condition


def _text(value: Any) -> str | None:
    return None if is_missing(value) else str(value)


def _points(aggregate: pd.DataFrame, keys: Sequence[str]) -> list[_Point]:
    rows = [row for _, row in aggregate.iterrows()]
    by_condition = condition_varies(rows, keys)
    # Other grid keys name a line only where they vary within one panel (a key that only
    # differs between algorithms, such as an algorithm's own encoder, does not; nor does a
    # corruption rate, which is set for every corrupted point and for no clean one)
    cells: dict[tuple, list[pd.Series]] = {}
    for row in rows:
        place = (row.get("algo.name"), row.get("dataset.name"))
        place += (condition_of_point(row),) if by_condition else ()
        cells.setdefault(tuple(_text(v) for v in place), []).append(row)
    others = [
        k
        for k in keys
        if k not in PLACED
        and not (by_condition and k in CONDITION_KEYS)
        and any(len({group_key([row.get(k)]) for row in c}) > 1 for c in cells.values())
    ]
    points = []
    for row in rows:
        base = is_base(row.get("optim.name"))
        networks = networks_of(row.get("optim.networks")) or ("all",)
        rho = pd.to_numeric(pd.Series([row.get("optim.rho")]), errors="coerce").iloc[0]
        points.append(
            _Point(
                algo=_text(row.get("algo.name")) or "",
                dataset=_text(row.get("dataset.name")) or "",
                sam=() if base else networks,
                rho=float(rho) if not base and pd.notna(rho) else math.nan,
                other=point_label(row, others) if others else "",
                condition=condition_of_point(row) if by_condition else "",
            )
        )
    return points


def _rho_text(rho: float) -> str:
    return f"rho={rho:g}"


def _sam_text(sam: tuple[str, ...]) -> str:
    return "SAM on " + "+".join(sam) if sam != ("all",) else "SAM"


def facet_layout(aggregate: pd.DataFrame, keys: Sequence[str]) -> list[FacetFigure]:
    """The figures (usually one) a sweep's grid points are laid out in; see the module
    docstring."""
    points = _points(aggregate, keys)
    if any(p.dataset for p in points):
        # a run not started yet has no config to say its dataset: it has nothing to plot
        points = [p if p.dataset else dataclasses.replace(p, hidden=True) for p in points]
    several = len({p.dataset for p in points if not p.hidden}) > 1
    # from here on a point's "dataset" is its place: the dataset, with its condition if varied
    points = [dataclasses.replace(p, dataset=p.place(several)) for p in points]
    visible = [p for p in points if not p.hidden]
    sam_points = [p for p in visible if not p.adam]
    network_sets = list(dict.fromkeys(p.sam for p in sam_points))
    rhos = sorted({p.rho for p in sam_points if not math.isnan(p.rho)})
    datasets = list(dict.fromkeys(p.dataset for p in visible))
    algos = list(dict.fromkeys(p.algo for p in visible))
    network_study = len(network_sets) > 1 and len(rhos) > 1
    if network_study:
        lines_per_dataset = len(rhos) + any(p.adam for p in points)
        together = lines_per_dataset * len(datasets) <= MAX_LINES
        groups = [datasets] if together else [[d] for d in datasets]
        return [
            _network_figure(points, algos, network_sets, rhos, group, len(groups) > 1)
            for group in groups
        ]
    return [_dataset_figure(points, algos, datasets, network_sets, rhos)]


def _network_figure(
    points: list[_Point],
    algos: list[str],
    network_sets: list[tuple[str, ...]],
    rhos: list[float],
    datasets: list[str],
    split: bool,
) -> FacetFigure:
    columns = [_sam_text(s) for s in network_sets]
    styles: dict[int, LineStyle] = {}
    panels: dict[tuple[str, str], Panel] = {}
    for i, p in enumerate(points):
        if p.hidden or p.dataset not in datasets:
            continue
        d = datasets.index(p.dataset)
        where = f"{p.dataset} " if len(datasets) > 1 else ""
        linestyle = LINESTYLES[d % len(LINESTYLES)]
        if p.adam:
            styles[i] = LineStyle(f"{where}Adam", ADAM_COLOUR, linestyle, MARKERS[d % 4])
            targets = columns  # Adam is the reference in every network's panel
        else:
            colour = rho_colour(rhos.index(p.rho)) if p.rho in rhos else OTHER_COLOUR
            label = f"{where}{_rho_text(p.rho)}" + (f" {p.other}" if p.other else "")
            styles[i] = LineStyle(label, colour, linestyle, MARKERS[d % 4])
            targets = [_sam_text(p.sam)]
        for column in targets:
            row = algo_name(p.algo)
            panels.setdefault((row, column), Panel(row, column)).points.append(i)
    title = f"{datasets[0]}: " if split else ""
    return FacetFigure(
        "_" + re.sub(r"[^A-Za-z0-9.-]+", "-", datasets[0]) if split else "",
        title,
        [algo_name(a) for a in algos],
        columns,
        panels,
        styles,
    )


def _dataset_figure(
    points: list[_Point],
    algos: list[str],
    datasets: list[str],
    network_sets: list[tuple[str, ...]],
    rhos: list[float],
) -> FacetFigure:
    styles: dict[int, LineStyle] = {}
    variants: list[str] = []
    for i, p in enumerate(points):
        if p.hidden:
            continue
        if p.adam:
            label, colour = "Adam", ADAM_COLOUR
        else:
            parts = []
            # the networks are named where they vary or where SAM does not step them all
            named = len(network_sets) > 1 or network_sets not in ([], [("all",)])
            if named:
                parts.append(_sam_text(p.sam))
            if len(rhos) > 1 or len(network_sets) == 1:
                parts.append(("SAM " if not parts else "") + _rho_text(p.rho))
            if p.other:
                parts.append(p.other)
            label = " ".join(parts)
            if len(network_sets) > 1 or len(rhos) <= 1:
                # SAM without optim.networks steps every network: the "all" colour
                colour = network_colour(["actor", "critic"] if p.sam == ("all",) else p.sam)
            else:
                colour = rho_colour(rhos.index(p.rho))
        if p.other and p.adam:
            label = f"Adam {p.other}"
        styles[i] = LineStyle(label, colour)
        if label not in variants:
            variants.append(label)
    # more variants than a panel holds: each dataset's panel is split into chunks of variants
    chunk = MAX_LINES
    chunks = [variants[k : k + chunk] for k in range(0, len(variants), chunk)]
    columns = []
    panels: dict[tuple[str, str], Panel] = {}
    for dataset in datasets:
        for c, members in enumerate(chunks):
            column = dataset if len(chunks) == 1 else f"{dataset} ({c + 1}/{len(chunks)})"
            columns.append(column)
            for i, p in enumerate(points):
                if not p.hidden and p.dataset == dataset and styles[i].label in members:
                    row = algo_name(p.algo)
                    panels.setdefault((row, column), Panel(row, column)).points.append(i)
    if len(chunks) > 1:  # distinct colours within each chunk; the legend is per column then
        for i, style in styles.items():
            k = next(c for c, m in enumerate(chunks) if style.label in m)
            colour = (
                style.colour
                if style.colour == ADAM_COLOUR
                else f"C{chunks[k].index(style.label) % 10}"
            )
            styles[i] = LineStyle(style.label, colour)
    return FacetFigure("", "", [algo_name(a) for a in algos], columns, panels, styles)
