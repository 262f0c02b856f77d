"""The headline score of a run, defined once: every table, figure and hook reads it from here.

One evaluation decides nothing: on pendulum, adjacent evaluations of the same run moved a
difference between optimizers by tens of points and flipped its sign (issue 31). The headline
score is the mean normalized score (or return) over the evaluations in the last 20% of training
(step >= 0.8 x the last evaluated step), at least MIN_EVALS of them: the last MIN_EVALS when
fewer fall in that window, every evaluation when a run has fewer. `final` (the last evaluation)
and `best` (the best one) stay beside it as columns, so a reader sees how much the scored step
matters.

Also here: upgrading a summary written by an earlier samrl (columns it predates are added,
empty; `samrl.results.aggregate.read_summary`), and the choice of the score a table compares
on.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: The share of training, at the end, whose evaluations the headline averages.
HEADLINE_FRACTION = 0.2
#: The fewest evaluations the headline averages (fewer only when a run has fewer).
MIN_EVALS = 3
HEADLINE = "headline_normalized_score"
HEADLINE_RETURN = "headline_return"
HEADLINE_N = "headline_n_evals"
#: The scores a summary holds per run, by kind; the headline first, the one tables compare on.
SCORE_KINDS = ("headline", "final", "best")
KIND_TEXT = {
    "headline": "headline (mean of the evaluations in the last 20% of training, at least 3)",
    "final": "final (last evaluation)",
    "best": "best (best evaluation of each run)",
}
#: One sentence for captions and table notes.
HEADLINE_TEXT = (
    "headline score = mean normalized score over the evaluations in the last 20% of training, "
    f"at least {MIN_EVALS} of them (the last {MIN_EVALS} when fewer fall there)"
)


def score_name(kind: str, normalized: bool = True) -> str:
    """The summary column of a score kind: `headline_normalized_score`, `final_return`, ..."""
    return f"{kind}_{'normalized_score' if normalized else 'return'}"


def headline_rows(steps: pd.Series) -> np.ndarray:
    """Positions (into `steps`, in order) of the evaluations the headline averages."""
    step = pd.to_numeric(steps, errors="coerce").to_numpy(float)
    n = len(step)
    if n == 0:
        return np.arange(0)
    last = np.nanmax(step) if np.isfinite(step).any() else np.nan
    in_window = np.flatnonzero(step >= (1.0 - HEADLINE_FRACTION) * last)
    if len(in_window) >= MIN_EVALS:
        return in_window
    return np.arange(max(0, n - MIN_EVALS), n)


def headline_score(evals: pd.DataFrame, column: str = "normalized_score") -> tuple[float, int]:
    """(headline score, number of evaluations it averaged) of one run's eval.csv frame; NaN
    and 0 without evaluations. An evaluation with no value (NaN) counts and is skipped."""
    if column not in evals or "step" not in evals or evals.empty:
        return float("nan"), 0
    rows = headline_rows(evals["step"])
    values = pd.to_numeric(evals[column], errors="coerce").to_numpy(float)[rows]
    finite = values[np.isfinite(values)]
    return (float(finite.mean()) if len(finite) else float("nan")), len(rows)


def eval_columns(evals: pd.DataFrame) -> dict[str, float]:
    """final_/best_/headline_{return,normalized_score} and headline_n_evals of one run."""
    columns: dict[str, float] = {}
    for name, source in (("return", "return_mean"), ("normalized_score", "normalized_score")):
        values = (
            pd.to_numeric(evals[source], errors="coerce")
            if source in evals
            else pd.Series(dtype=float)
        )
        finite = values.dropna()
        # "final" is the last evaluation; NaN when that evaluation has no value.
        columns[f"final_{name}"] = float(values.iloc[-1]) if len(values) else np.nan
        columns[f"best_{name}"] = float(finite.max()) if len(finite) else np.nan
        columns[f"headline_{name}"], n_evals = headline_score(evals, source)
    columns[HEADLINE_N] = n_evals
    return columns


def compared_score(frame: pd.DataFrame) -> str:
    """The column a table compares runs on: the headline normalized score, else the headline
    return; the final score only for a summary written before the headline existed."""
    for kind in ("headline", "final"):
        for normalized in (True, False):
            column = score_name(kind, normalized)
            if column in frame and pd.to_numeric(frame[column], errors="coerce").notna().any():
                return column
    return HEADLINE


def upgrade_summary(summary: pd.DataFrame, defaults: Mapping[str, object]) -> pd.DataFrame:
    """A summary written by an earlier samrl with today's columns: each column of `defaults`
    it predates is added, holding its default (None: unknown)."""
    missing = {k: v for k, v in defaults.items() if k not in summary}
    return summary.assign(**missing) if missing else summary
