"""Comparing our cells with a published one, by direction only (one owner for the seed table
and the corruption table).

Ours: the difference of IQMs (treatment minus reference) with a bootstrap 95% CI and
P(improvement) with its CI, both pairing seeds when the two sides completed the same seeds (a
seed fixes the data order and the initial weights). Our direction is "higher" / "lower" only
when the CI of the difference excludes 0, else "none"; theirs is the sign of their difference
(one run or a mean over few seeds: no interval). The agreement is agrees / disagrees /
indistinguishable (ours "none"), None where they reported nothing.

Sensitivity to the scored step (issue 31): the difference is computed under the headline score
(samrl.results.headline), and again under the final and the best evaluation. A cell whose
headline CI excludes 0 is a claim; a claim whose direction changes (sign, or CI reaching 0)
under the final or the best score is "depends on the scored step" and makes no claim.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from samrl.results import stats
from samrl.results.headline import score_name

HIGHER, LOWER, NONE = "higher", "lower", "none"
AGREES, DISAGREES, INDISTINGUISHABLE = "agrees", "disagrees", "indistinguishable"
HOLDS, DEPENDS = "holds", "depends on the scored step"
#: The score kinds a claim is checked under besides the headline.
OTHER_KINDS = ("final", "best")


def scores_by_seed(runs: pd.DataFrame, kind: str = "headline") -> pd.Series:
    """The normalized score of `kind` per completed run, indexed by seed."""
    column = score_name(kind)
    return pd.Series(
        pd.to_numeric(runs[column], errors="coerce").to_numpy(float), index=runs["seed"].to_numpy()
    )


def sensitivity(directions: dict[str, str]) -> str | None:
    """HOLDS when the headline direction is a claim and every other kind agrees with it,
    DEPENDS when one differs, None when the headline makes no claim (CI spans 0)."""
    headline = directions["headline"]
    if headline == NONE:
        return None
    return HOLDS if all(d == headline for d in directions.values()) else DEPENDS


def versus_by_score(x: pd.DataFrame, y: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    """`versus` of the runs x against the runs y under the headline score (plain column
    names) and `diff_<kind>`, its CI and `direction_<kind>` under the final and best scores,
    then `direction` (headline) and `sensitivity`."""
    cells = versus(scores_by_seed(x), scores_by_seed(y), n_boot, seed)
    directions = {"headline": direction(cells["diff_ci_low"], cells["diff_ci_high"])}
    for kind in OTHER_KINDS:
        other = versus(scores_by_seed(x, kind), scores_by_seed(y, kind), n_boot, seed)
        for part in ("diff", "diff_ci_low", "diff_ci_high"):
            cells[part.replace("diff", f"diff_{kind}")] = other[part]
        directions[kind] = direction(other["diff_ci_low"], other["diff_ci_high"])
        cells[f"direction_{kind}"] = directions[kind]
    cells["direction"] = directions["headline"]
    cells["sensitivity"] = sensitivity(directions)
    return cells


def split_text(runs: pd.DataFrame) -> str:
    """The held-out fractions (dataset.test_fraction) the runs trained without: "0", "0/0.1";
    "?" for a summary that predates the column."""
    if "dataset.test_fraction" not in runs:
        return "?"
    values = pd.to_numeric(runs["dataset.test_fraction"], errors="coerce").fillna(0.0)
    return "/".join(f"{v:g}" for v in sorted(set(values.astype(float))))


def depends(row: pd.Series | dict[str, Any]) -> bool:
    """Whether a table row's claim depends on the scored step."""
    return row.get("sensitivity") == DEPENDS


def sensitivity_text(row: pd.Series) -> str:
    """ "−4.1 / −5.0 / −1.2 (holds)": Δ under the final, headline and best scores."""
    values = [row.get(c) for c in ("diff_final", "diff", "diff_best")]
    if any(v is None or pd.isna(v) for v in values):
        return ""
    text = " / ".join(number_text(v, signed=True) for v in values)
    word = row.get("sensitivity")
    return text if word is None or pd.isna(word) else f"{text} ({word})"


def versus(x: pd.Series, y: pd.Series, n_boot: int, seed: int) -> dict[str, Any]:
    """x against y (final scores indexed by seed): diff, diff_ci_low/high, prob_improvement,
    prob_improvement_ci_low/high and whether seeds were paired."""
    paired = set(x.index) == set(y.index) and x.index.is_unique and y.index.is_unique
    if paired:
        y = y.loc[x.index]
    xv, yv = x.to_numpy(float), y.to_numpy(float)
    low, high = stats.difference_ci(xv, yv, stats.iqm, n_boot=n_boot, seed=seed, paired=paired)
    p_low, p_high = stats.probability_of_improvement_ci(
        xv, yv, n_boot=n_boot, seed=seed, paired=paired
    )
    return {
        "diff": stats.iqm(xv) - stats.iqm(yv),
        "diff_ci_low": low,
        "diff_ci_high": high,
        "prob_improvement": stats.probability_of_improvement(xv, yv),
        "prob_improvement_ci_low": p_low,
        "prob_improvement_ci_high": p_high,
        "paired": paired,
    }


def direction(low: float, high: float) -> str:
    """Our direction from the CI of a difference."""
    if low > 0:
        return HIGHER
    if high < 0:
        return LOWER
    return NONE


def sign(value: float | None) -> str | None:
    """Their direction: the sign of their difference; None where they reported nothing."""
    if value is None:
        return None
    return HIGHER if value > 0 else LOWER if value < 0 else NONE


def agreement(ours: str, theirs: str | None) -> str | None:
    if theirs is None:
        return None
    if ours == NONE:
        return INDISTINGUISHABLE
    return AGREES if ours == theirs else DISAGREES


def number_text(value: Any, digits: int = 1, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def interval_text(row: pd.Series, prefix: str, digits: int = 1, signed: bool = False) -> str:
    """`row[prefix] [row[prefix_ci_low], row[prefix_ci_high]]` ("iqm", "ci_low", "ci_high"
    when prefix is empty); blank when the centre is missing."""
    centre = row[prefix] if prefix else row["iqm"]
    low = row[f"{prefix}_ci_low" if prefix else "ci_low"]
    high = row[f"{prefix}_ci_high" if prefix else "ci_high"]
    if pd.isna(centre):
        return ""
    centre_text, low_text, high_text = (number_text(v, digits, signed) for v in (centre, low, high))
    return f"{centre_text} [{low_text}, {high_text}]"


def verdict_text(ours: str, verdict: Any, claim: bool, sensitive: bool = False) -> str:
    """ "agrees (SAM higher)", "SAM lower" where they reported nothing, prefixed "no claim: "
    where the row's baseline does not learn, "no claim (depends on the scored step): " where
    the direction changes with the scored step."""
    words = {HIGHER: "SAM higher", LOWER: "SAM lower", NONE: "no difference"}[ours]
    text = words if verdict is None or pd.isna(verdict) else f"{verdict} ({words})"
    if sensitive:
        return f"no claim ({DEPENDS}): {text}"
    return text if claim else f"no claim: {text}"


def tally(cells: pd.DataFrame, claims_only: bool = True) -> dict[str, int]:
    """agrees / disagrees / indistinguishable over the rows that make a claim (or, with
    claims_only False, over every row the reference reports, as directions only)."""
    if "agreement" not in cells:
        return {AGREES: 0, DISAGREES: 0, INDISTINGUISHABLE: 0}
    rows = cells[cells["agreement"].notna()]
    if claims_only:
        rows = rows[rows["claim"].astype(bool)]
    return {k: int((rows["agreement"] == k).sum()) for k in (AGREES, DISAGREES, INDISTINGUISHABLE)}


def table_section(table: str, against: str, cells: pd.DataFrame, unit: str = "row") -> list[str]:
    """A table report's `## Table` section: the table, then `against` (which reference, which
    rows claim) and the tally of its comparisons (tally_text)."""
    return ["", "## Table", "", table, "", f"{against}: {tally_text(cells, unit)}.", ""]


def tally_text(cells: pd.DataFrame, unit: str = "row") -> str:
    """ "2 agrees, 1 disagrees, 0 indistinguishable in the 3 compared rows that make a claim",
    plus the directions of the rows that make none where there are such rows; `unit` names
    what one comparison is (a table row, a cell)."""

    def said(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {k}" for k, n in counts.items())

    claims, every = tally(cells), tally(cells, claims_only=False)
    n_claims, n_every = sum(claims.values()), sum(every.values())
    text = f"{said(claims)} in the {n_claims} compared {unit}s that make a claim"
    if n_every > n_claims:
        text += f"; as directions only, all {n_every} compared {unit}s: {said(every)}"
    return text
