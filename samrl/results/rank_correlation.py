"""Does a run's sharpness, measured without the environment, rank runs as their scores do?

Per sharpness measure and scope (all completed runs, then each algorithm), two rankings:
- `across runs`: Spearman's rank correlation between the measure and the headline score
  (samrl.results.headline) over runs, with a bootstrap 95% CI that resamples runs (seeded);
- `within cells`: runs ranked within their treatment cell (grid point less seed), the ranks
  centred per cell and pooled (the Pearson correlation of the centred ranks), with a bootstrap
  CI that resamples cells. This is the selection question: among runs trained alike, does the
  sharper one score higher? A correlation across runs mixes in the treatments' own effects.
n counts runs. Measures:
- `<net>_rho<r>_sharpness`: the fixed-radius probe (optim.probe), the value of the final epoch
  that measured it (last non-NaN row of the run's sharpness.csv), the same radius in every run
  whatever it trains with;
- `posthoc_<net>_rho<r>_worst_case`: the post-hoc worst-case sharpness of the last checkpoint
  (`samrl sharpness`), when the sweep has it.
Sharpness measured at each run's own training rho is left out: it is 0 for Adam and grows with
rho by construction. A negative correlation means that flatter runs score higher.

Pooling all runs mixes algorithms (and datasets) whose scores differ for other reasons; the
per-algorithm rows are the ones to read when the pooled one disagrees with them, and the
within-cell rows the ones that say whether sharpness selects among runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from samrl.metrics import SHARPNESS, WORST_CASE, fixed_radius_parts, is_last10, is_posthoc
from samrl.results import stats
from samrl.results.headline import HEADLINE
from samrl.results.labels import group_key
from samrl.results.paper import algo_name
from samrl.results.runs import read_run_table, run_path
from samrl.rundir import SHARPNESS_FILE
from samrl.status import RunStatus

ALL_RUNS = "all runs"
ACROSS, WITHIN = "across runs", "within cells"
#: What a treatment cell is when the caller names no grid keys.
CELL_KEYS = ("algo.name", "dataset.name", "optim.name", "optim.rho", "optim.networks")
COLUMNS = ("measure", "scope", "ranking", "n", "spearman", "ci_low", "ci_high", "score")


def _centred_ranks(x: np.ndarray, cells: np.ndarray) -> list[np.ndarray]:
    """Per cell with at least 2 runs: the ranks of x within it minus their mean."""
    out = []
    for cell in dict.fromkeys(cells):
        values = x[cells == cell]
        if len(values) >= 2:
            ranks = rankdata(values)
            out.append(ranks - ranks.mean())
    return out


def _pooled(rx: Sequence[np.ndarray], ry: Sequence[np.ndarray]) -> float:
    x, y = np.concatenate(rx), np.concatenate(ry)
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def within_cell_spearman(
    x: np.ndarray, y: np.ndarray, cells: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """(correlation of within-cell centred ranks, CI low, CI high); the bootstrap resamples
    cells, the units that are independent here. NaN without 2 cells of 2 runs."""
    rx, ry = _centred_ranks(x, cells), _centred_ranks(y, cells)
    if len(rx) < 2:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rx), size=(n_boot, len(rx)))
    replicates = np.array([_pooled([rx[i] for i in p], [ry[i] for i in p]) for p in picks])
    replicates = replicates[np.isfinite(replicates)]
    if not len(replicates):
        return _pooled(rx, ry), float("nan"), float("nan")
    low, high = np.percentile(replicates, [2.5, 97.5])
    return _pooled(rx, ry), float(low), float(high)


def _is_probe(column: str) -> bool:
    """`<net>_rho<r>_sharpness`: a fixed-radius probe column of sharpness.csv."""
    parts = fixed_radius_parts(column)
    return parts is not None and not parts[2] and column.endswith(SHARPNESS.suffix)


def _is_posthoc_worst_case(column: str) -> bool:
    """`posthoc_<net>_rho<r>_worst_case` in the summary (not its `_last10` kin)."""
    parts = fixed_radius_parts(column)
    return parts is not None and parts[2] and not is_last10(column) and column.endswith(WORST_CASE)


def final_probe_values(summary: pd.DataFrame, sweep_dir: Path | None) -> pd.DataFrame:
    """Per summary row: each fixed-radius probe column's last measured value (NaN if none)."""
    rows = []
    for relative in summary["run_dir"]:
        run_dir = run_path(sweep_dir, relative) if sweep_dir is not None else Path(relative)
        frame = read_run_table(run_dir, SHARPNESS_FILE)
        values = {}
        for column in frame.columns:
            if _is_probe(column):
                measured = pd.to_numeric(frame[column], errors="coerce").dropna()
                values[column] = float(measured.iloc[-1]) if len(measured) else float("nan")
        rows.append(values)
    return pd.DataFrame(rows, index=summary.index)


def rank_correlations(
    summary: pd.DataFrame,
    sweep_dir: Path | None,
    score: str = HEADLINE,
    n_boot: int = stats.DEFAULT_N_BOOT,
    seed: int = 0,
    cell_keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (measure, scope, ranking) with at least one completed run measured
    (COLUMNS); cells are the values of `cell_keys` (default CELL_KEYS, those present)."""
    done = summary[summary["status"] == RunStatus.COMPLETED]
    if done.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    measures = final_probe_values(done, sweep_dir)
    for column in done.columns:
        if _is_posthoc_worst_case(column):
            measures[column] = pd.to_numeric(done[column], errors="coerce")
    scores = pd.to_numeric(done[score], errors="coerce")
    keys = [k for k in (cell_keys or CELL_KEYS) if k in done]
    # integer codes: an array of tuples would compare element by element
    codes, _ = pd.factorize(pd.Series([group_key(v) for v in done[keys].itertuples(index=False)]))
    cells = pd.Series(codes, done.index)
    rows = []
    for measure in sorted(measures.columns, key=lambda c: (is_posthoc(c), c)):
        scopes = [(ALL_RUNS, done.index)]
        scopes += [(str(algo), runs.index) for algo, runs in done.groupby("algo.name", sort=False)]
        for scope, index in scopes:
            pair = pd.DataFrame({"x": measures.loc[index, measure], "y": scores.loc[index]})
            pair = pair.dropna()
            if pair.empty:
                continue
            x, y = pair["x"].to_numpy(float), pair["y"].to_numpy(float)
            low, high = stats.spearman_ci(x, y, n_boot=n_boot, seed=seed)
            head = {"measure": measure, "scope": scope, "n": len(pair), "score": score}
            rows.append(
                {
                    **head,
                    "ranking": ACROSS,
                    "spearman": stats.spearman(x, y),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
            within = within_cell_spearman(x, y, cells.loc[pair.index].to_numpy(), n_boot, seed)
            rows.append(
                {
                    **head,
                    "ranking": WITHIN,
                    **dict(zip(("spearman", "ci_low", "ci_high"), within, strict=True)),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def correlation_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """The table as markdown rows for report.md."""

    def number(value: float) -> str:
        return "–" if pd.isna(value) else f"{value:+.2f}"

    return [
        {
            "sharpness measure": f"`{row['measure']}`",
            "runs": row["scope"] if row["scope"] == ALL_RUNS else algo_name(row["scope"]),
            "ranked": str(row.get("ranking") or ACROSS),
            "n": str(row["n"]),
            "Spearman rho [95% CI]": f"{number(row['spearman'])} "
            f"[{number(row['ci_low'])}, {number(row['ci_high'])}]",
        }
        for _, row in table.iterrows()
    ]
