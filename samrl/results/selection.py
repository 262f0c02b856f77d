"""Choosing checkpoints without the environment: how well does each signal choose?

In offline RL the environment is what a user does not have, so the practical question is
which checkpoint (or which run) to deploy from signals computed on data alone. This module is
the scoring math of `samrl select`; samrl.analysis.selection_signals computes the signals.

Input: the long table of selection.csv, one row per (run, checkpoint step, signal) with the
signal's value and, where the run evaluated at that step, the environment score (`score`: the
normalized score from eval.csv, else the mean return).

Two levels of choice, each scored where environment scores exist:
- within a run, across its checkpoints: Spearman's rank correlation of the signal (oriented so
  that higher means better, see SIGNALS) with the score, and regret@k = best score of the run
  minus the best score among the signal's top k checkpoints (k = 1, 3);
- within a cell (runs of one grid point, differing only by seed), across its runs: the same,
  with a run's value and score the means over its checkpoints in the last RUN_FRACTION of
  training (the headline score's window, DESIGN.md section 8), so no single evaluation decides.

Baselines: the last checkpoint (within runs), and a uniformly random choice, whose expected
regret@k is computed exactly (no sampling): best - E[max of a uniform k-subset].
Aggregates are IQMs over runs (or cells) with percentile-bootstrap 95% CIs that resample runs.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from samrl.results import stats


@dataclasses.dataclass(frozen=True)
class Signal:
    """An environment-free signal: which way is better, and whether it reads held-out data."""

    name: str
    higher_is_better: bool
    held_out: bool
    text: str


#: Every signal `samrl select` computes, with its direction: the one table of directions.
SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("critic_sharpness", False, False, "critic L(w+eps)-L(w) at the fixed radius"),
        Signal("actor_sharpness", False, False, "actor L(w+eps)-L(w) at the fixed radius"),
        Signal("td_error", False, True, "d3rlpy TDErrorEvaluator"),
        Signal("value_estimate", True, True, "d3rlpy AverageValueEstimationEvaluator"),
        Signal("initial_value", True, True, "d3rlpy InitialStateValueEstimationEvaluator"),
        Signal("soft_opc", True, True, "d3rlpy SoftOPCEvaluator"),
        Signal("fqe", True, True, "d3rlpy FQE's initial-state value of the policy"),
    )
}
#: Baselines scored beside the signals (not computed from the model).
LAST = "last_checkpoint"
RANDOM = "random"
BASELINES = (LAST, RANDOM)
#: A run's value and score within a cell: means over checkpoints in this last fraction.
RUN_FRACTION = 0.2
KS = (1, 3)
WITHIN_RUN = "within run"
WITHIN_CELL = "within cell"
ALL = "all"
#: selection.csv's columns.
COLUMNS = ("run", "run_id", "cell", "algo", "seed", "step", "signal", "source", "value", "score")
METRICS = ("spearman", *(f"regret@{k}" for k in KS))


def higher_is_better(signal: str) -> bool:
    return signal == LAST or SIGNALS[signal].higher_is_better


def oriented(signal: str, values: np.ndarray) -> np.ndarray:
    """The signal's values turned so that higher means a better choice."""
    values = np.asarray(values, dtype=float)
    return values if higher_is_better(signal) else -values


def top_k(goodness: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best values (ties: the earlier index first, i.e. earlier checkpoint)."""
    return np.argsort(-np.asarray(goodness, dtype=float), kind="stable")[:k]


def regret(goodness: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Best score minus the best score among the top k by `goodness`."""
    scores = np.asarray(scores, dtype=float)
    return float(scores.max() - scores[top_k(goodness, k)].max())


def random_regret(scores: np.ndarray, k: int) -> float:
    """Expected regret@k of k distinct choices drawn uniformly, exactly: with the scores sorted
    ascending, the i-th (1-based) is the best of the k with probability C(i-1, k-1) / C(n, k)."""
    ordered = np.sort(np.asarray(scores, dtype=float))
    n = ordered.size
    k = min(k, n)
    weights = np.array([math.comb(i - 1, k - 1) for i in range(1, n + 1)], dtype=float)
    return float(ordered[-1] - (weights * ordered).sum() / math.comb(n, k))


def unit_metrics(signal: str, values: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Spearman and regret@k of one choice among aligned (value, score) pairs."""
    if signal == RANDOM:
        out = {"spearman": math.nan}
        out.update({f"regret@{k}": random_regret(scores, k) for k in KS})
        return out
    goodness = oriented(signal, values)
    out = {"spearman": stats.spearman(goodness, scores)}
    out.update({f"regret@{k}": regret(goodness, scores, k) for k in KS})
    return out


def _with_baselines(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows plus the baselines' rows: last (value = step) and random (value unused)."""
    steps = rows.drop_duplicates(["run", "step"]).copy()
    last = steps.assign(signal=LAST, value=steps["step"].astype(float), source="")
    random = steps.assign(signal=RANDOM, value=0.0, source="")
    return pd.concat([rows, last, random], ignore_index=True)


def within_run(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, signal) with at least two scored checkpoints: n and METRICS."""
    scored = _with_baselines(rows).dropna(subset=["value", "score"])
    out = []
    for (run, signal), unit in scored.groupby(["run", "signal"], sort=False):
        if len(unit) < 2:
            continue
        unit = unit.sort_values("step")
        metrics = unit_metrics(str(signal), unit["value"].to_numpy(), unit["score"].to_numpy())
        out.append(_unit_row(unit, signal, run=run, **metrics))
    return pd.DataFrame(out)


def _unit_row(unit: pd.DataFrame, signal: object, **fields: object) -> dict[str, object]:
    first = unit.iloc[0]
    return {
        "cell": first["cell"],
        "algo": first["algo"],
        "signal": signal,
        "n": len(unit),
        **fields,
    }


def run_level(rows: pd.DataFrame, fraction: float = RUN_FRACTION) -> pd.DataFrame:
    """Per (run, signal): mean value and mean score over the checkpoints in the run's last
    `fraction` of training (steps >= (1 - fraction) * last step; at least the last one)."""
    rows = rows.dropna(subset=["value"])
    last_step = rows.groupby("run")["step"].transform("max")
    late = rows[rows["step"] >= (1.0 - fraction) * last_step]
    keys = ["cell", "algo", "run", "seed", "signal"]
    return late.groupby(keys, sort=False)[["value", "score"]].mean().reset_index()


def cell_units(rows: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """(cell, signal) -> its runs' (value, score), for cells with at least two scored runs;
    the random baseline included (its values unused), the last checkpoint not (runs of a cell
    all end at the same step)."""
    runs = run_level(rows).dropna(subset=["score"])
    runs = pd.concat([runs, runs.drop_duplicates("run").assign(signal=RANDOM, value=0.0)])
    return {
        (str(cell), str(signal)): unit
        for (cell, signal), unit in runs.groupby(["cell", "signal"], sort=False)
        if len(unit) >= 2
    }


def within_cell(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, signal) with at least two scored runs: n (runs) and METRICS."""
    out = []
    for (_cell, signal), unit in cell_units(rows).items():
        metrics = unit_metrics(signal, unit["value"].to_numpy(), unit["score"].to_numpy())
        out.append(_unit_row(unit, signal, **metrics))
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- aggregates


def _resampled_metrics(signal: str, unit: pd.DataFrame, index: np.ndarray) -> dict[str, np.ndarray]:
    """METRICS of one cell for every bootstrap replicate (rows of `index`: resampled runs)."""
    scores = unit["score"].to_numpy(float)[index]
    if signal == RANDOM:
        out = {"spearman": np.full(len(index), np.nan)}
        for k in KS:
            out[f"regret@{k}"] = np.array([random_regret(row, k) for row in scores])
        return out
    goodness = oriented(signal, unit["value"].to_numpy())[index]
    order = np.argsort(-goodness, axis=1, kind="stable")
    out = {"spearman": stats.spearman_rows(goodness, scores)}
    for k in KS:
        chosen = np.take_along_axis(scores, order[:, :k], axis=1).max(axis=1)
        out[f"regret@{k}"] = scores.max(axis=1) - chosen
    return out


def _nan_iqm(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return stats.iqm(values) if values.size else math.nan


def _rowwise_nan_iqm(matrix: np.ndarray) -> np.ndarray:
    """`_nan_iqm` of every row at once (2000 replicates in one numpy call): the row's non-NaN
    values sorted, int(n / 4) dropped at each end, as scipy's trim_mean(0.25) does."""
    ordered = np.sort(matrix, axis=1)  # NaNs last
    n = (~np.isnan(matrix)).sum(axis=1)
    cut = (0.25 * n).astype(int)
    index = np.arange(matrix.shape[1])
    keep = (index >= cut[:, None]) & (index < (n - cut)[:, None])
    counts = keep.sum(axis=1)
    sums = np.where(keep, ordered, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _cell_cis(
    signal: str, units: list[pd.DataFrame], n_boot: int, seed: int
) -> dict[str, tuple[float, float]]:
    """95% CIs of the IQM over cells of each metric, resampling runs within each cell."""
    rng = np.random.default_rng(seed)
    per_cell = [
        _resampled_metrics(signal, u, rng.integers(0, len(u), (n_boot, len(u)))) for u in units
    ]
    out = {}
    for metric in METRICS:
        matrix = np.stack([cell[metric] for cell in per_cell], axis=1)  # (n_boot, cells)
        replicates = _rowwise_nan_iqm(matrix)
        replicates = replicates[~np.isnan(replicates)]
        if replicates.size == 0:
            out[metric] = (math.nan, math.nan)
        else:
            low, high = np.percentile(replicates, [2.5, 97.5])
            out[metric] = (float(low), float(high))
    return out


def _run_cis(units: pd.DataFrame, n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """95% CIs of the IQM over runs of each metric (runs resampled)."""
    return {
        m: stats.stratified_bootstrap_ci(
            units[m].dropna().to_numpy(float), stats.iqm, n_boot=n_boot, seed=seed
        )
        for m in METRICS
    }


def _table_row(
    level: str, scope: str, signal: str, units: pd.DataFrame, cis: dict[str, tuple[float, float]]
) -> dict[str, object]:
    row: dict[str, object] = {"level": level, "scope": scope, "signal": signal, "n": len(units)}
    for metric in METRICS:
        row[metric] = _nan_iqm(units[metric].to_numpy(float))
        row[f"{metric}_low"], row[f"{metric}_high"] = cis[metric]
    return row


def signal_order(signals: pd.Series) -> list[str]:
    """The signals present, in SIGNALS' order, then the baselines."""
    present = set(signals)
    return [s for s in (*SIGNALS, *BASELINES) if s in present]


def _scopes(units: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    algos = sorted(units["algo"].dropna().unique())
    scopes = [(ALL, units)]
    return scopes + [(a, units[units["algo"] == a]) for a in algos] if len(algos) > 1 else scopes


def summary_table(rows: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Per (level, scope, signal): n units and each metric's IQM with its 95% CI. Scope: all
    runs, then each algorithm when there are several."""
    out = []
    runs = within_run(rows)
    cells = within_cell(rows)
    units_of_cell = cell_units(rows)
    for level, units in ((WITHIN_RUN, runs), (WITHIN_CELL, cells)):
        if units.empty:
            continue
        for scope, scoped in _scopes(units):
            for signal in signal_order(scoped["signal"]):
                unit = scoped[scoped["signal"] == signal]
                if level == WITHIN_RUN:
                    cis = _run_cis(unit, n_boot, seed)
                else:
                    chosen = [units_of_cell[(str(c), signal)] for c in unit["cell"]]
                    cis = _cell_cis(signal, chosen, n_boot, seed)
                out.append(_table_row(level, scope, signal, unit, cis))
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- choices


def choices(rows: pd.DataFrame, group: str) -> pd.DataFrame:
    """Per `group` ("run" or "cell") and signal, what the signal chooses: the checkpoint step
    (per run) or the run (per cell), with its score; the true best as signal "best" where
    scores exist."""
    if group == "run":
        units = rows.dropna(subset=["value"]).assign(choice=rows["step"].astype(str))
    else:
        units = run_level(rows).assign(choice=lambda f: "seed " + f["seed"].astype(str))
    out = []
    for (key, signal), unit in units.groupby([group, "signal"], sort=False):
        chosen = unit.iloc[top_k(oriented(str(signal), unit["value"].to_numpy()), 1)[0]]
        out.append(
            {group: key, "signal": signal, "choice": chosen["choice"], "score": chosen["score"]}
        )
    for key, unit in units.groupby(group, sort=False):
        scored = unit.dropna(subset=["score"])
        if not scored.empty:
            best = scored.loc[scored["score"].idxmax()]
            out.append(
                {group: key, "signal": "best", "choice": best["choice"], "score": best["score"]}
            )
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- text and figure


def interval_text(row: pd.Series, metric: str, digits: int = 2) -> str:
    """'0.31 [0.12, 0.48]', or '-' when undefined."""
    value = row[metric]
    if value is None or not np.isfinite(value):
        return "-"
    low, high = row[f"{metric}_low"], row[f"{metric}_high"]
    interval = f" [{low:.{digits}f}, {high:.{digits}f}]" if np.isfinite(low) else ""
    return f"{value:.{digits}f}{interval}"


def markdown(table: pd.DataFrame) -> str:
    """The summary table in Markdown: IQM [95% CI] per metric."""
    head = "| level | scope | signal | n | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (4 + len(METRICS))]
    for _, row in table.iterrows():
        cells = [str(row["level"]), str(row["scope"]), str(row["signal"]), str(row["n"])]
        cells += [interval_text(row, m) for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def regret_figure(table: pd.DataFrame, title: str) -> object:
    """Signals on the x axis, regret@1 (IQM, 95% CI) over all runs: one marker per level
    (within run, within cell): two legend entries."""
    from samrl.results.plots import new_figure

    pooled = table[table["scope"] == ALL]
    order = signal_order(pooled["signal"])
    figure, (ax,) = new_figure(1, width=max(6.0, 0.9 * len(order) + 2), height=3.8)
    for offset, (level, marker) in zip(
        (-0.12, 0.12), ((WITHIN_RUN, "o"), (WITHIN_CELL, "s")), strict=True
    ):
        rows = pooled[pooled["level"] == level].set_index("signal")
        xs = [i + offset for i, s in enumerate(order) if s in rows.index]
        shown = [s for s in order if s in rows.index]
        if not shown:
            continue
        rows = rows.loc[shown]
        centre = rows["regret@1"].to_numpy(float)
        errors = _error_bars(centre, rows["regret@1_low"], rows["regret@1_high"])
        ax.errorbar(xs, centre, yerr=errors, fmt=marker, capsize=3, label=level)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
    ax.set_ylabel("regret@1 (score points; IQM, 95% CI)")
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return figure


def _error_bars(centre: np.ndarray, low: pd.Series, high: pd.Series) -> np.ndarray:
    low_, high_ = low.to_numpy(float), high.to_numpy(float)
    below = np.where(np.isfinite(low_), centre - low_, 0.0)
    above = np.where(np.isfinite(high_), high_ - centre, 0.0)
    return np.clip(np.vstack([below, above]), 0.0, None)
