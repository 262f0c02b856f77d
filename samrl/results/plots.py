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

from samrl.config.sections import RUN_RECORD
from samrl.errors import RunError, SamrlError, unknown_name
from samrl.metrics import (
    SHARPNESS,
    WORST_CASE,
    fixed_radius_parts,
    is_fixed_radius,
    is_headline,
    is_sharpness_summary,
    sam_metric_of,
    without_last10,
)
from samrl.networks import TITLES
from samrl.results.aggregate import (
    SweepTables,
    score_column,
)
from samrl.results.runs import (
    find_runs,
    is_run_dir,
    read_config,
    read_run_table,
    run_path,
)
from samrl.rundir import METRIC_FILES, SWEEP_FILE, atomic_path
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


def save(figure: Figure, out: Path, dpi: int = 110, pdf: bool = True) -> Path:
    """The PNG at `out` and a PDF beside it (for papers); returns the PNG. Each is written
    atomically (a crash leaves the old figure or none, never half of one), and the PDF without
    its creation date, so that the same figure gives the same bytes."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as temporary:
        figure.savefig(temporary, dpi=dpi, format="png")
    if pdf:
        with atomic_path(out.with_suffix(".pdf")) as temporary:
            figure.savefig(temporary, format="pdf", metadata={"CreationDate": None})
    return out


STEP_LABEL = "training step (gradient updates)"


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
        "headline_return": "Headline return (mean of the evaluations in the last 20% of "
        "training, at least 3)",
        "headline_normalized_score": "Headline normalized score (mean of the evaluations in the "
        "last 20% of training, at least 3)",
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
    run_id = (read_config(run_dir).get(RUN_RECORD) or {}).get("run_id") or run_dir.name
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


def _comparable(columns: Sequence[str]) -> list[str]:
    """Sharpness measured at one fixed radius (probe columns, post-hoc worst case) when a sweep
    has it: sharpness at each run's own training rho is 0 at rho = 0 and grows with rho by
    construction, so it only stands in when nothing else was measured."""
    fixed = [c for c in columns if is_fixed_radius(c)]
    return fixed or list(columns)


def vs_rho_columns(aggregate: pd.DataFrame) -> list[str]:
    """Columns plotted against rho: the compared score and each network's sharpness (at the
    fixed radius when measured, else `<net>_sharpness_last10`)."""
    score = score_column(aggregate)
    sharpness = [
        c.removesuffix("_iqm")
        for c in aggregate
        if c.endswith("_iqm")
        and is_sharpness_summary(c.removesuffix("_iqm"))
        and aggregate[c].notna().any()
    ]
    return [score, *_comparable(sharpness)]


def is_sweep_dir(path: Path) -> bool:
    """A sweep.json, or run directories below (and not a run directory itself)."""
    path = Path(path)
    if (path / SWEEP_FILE).is_file():
        return True
    return not is_run_dir(path) and bool(find_runs(path))
