"""Does a run's sharpness, measured without the environment, rank runs as their scores do?

Per sharpness measure and scope (all completed runs, then each algorithm): Spearman's rank
correlation between the measure and the final score over runs, with a bootstrap 95% CI that
resamples runs (seeded), and n. Measures:
- `<net>_rho<r>_sharpness`: the fixed-radius probe (optim.probe), the value of the final epoch
  that measured it (last non-NaN row of the run's sharpness.csv), the same radius in every run
  whatever it trains with;
- `posthoc_<net>_rho<r>_worst_case`: the post-hoc worst-case sharpness of the last checkpoint
  (`samrl sharpness`), when the sweep has it.
Sharpness measured at each run's own training rho is left out: it is 0 for Adam and grows with
rho by construction. A negative correlation means that flatter runs score higher.

Pooling all runs mixes algorithms (and datasets) whose scores differ for other reasons; the
per-algorithm rows are the ones to read when the pooled one disagrees with them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from samrl.metrics import SHARPNESS, WORST_CASE, fixed_radius_parts, is_last10, is_posthoc
from samrl.results import stats
from samrl.results.paper import algo_name
from samrl.results.runs import read_run_table, run_path
from samrl.rundir import SHARPNESS_FILE
from samrl.status import RunStatus

ALL_RUNS = "all runs"
COLUMNS = ("measure", "scope", "n", "spearman", "ci_low", "ci_high", "score")


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
    score: str = "final_normalized_score",
    n_boot: int = stats.DEFAULT_N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (measure, scope) with at least one completed run measured (COLUMNS)."""
    done = summary[summary["status"] == RunStatus.COMPLETED]
    if done.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    measures = final_probe_values(done, sweep_dir)
    for column in done.columns:
        if _is_posthoc_worst_case(column):
            measures[column] = pd.to_numeric(done[column], errors="coerce")
    scores = pd.to_numeric(done[score], errors="coerce")
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
            rows.append(
                {
                    "measure": measure,
                    "scope": scope,
                    "n": len(pair),
                    "spearman": stats.spearman(x, y),
                    "ci_low": low,
                    "ci_high": high,
                    "score": score,
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
            "n": str(row["n"]),
            "Spearman rho [95% CI]": f"{number(row['spearman'])} "
            f"[{number(row['ci_low'])}, {number(row['ci_high'])}]",
        }
        for _, row in table.iterrows()
    ]
