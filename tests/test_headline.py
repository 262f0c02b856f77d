"""The headline score (samrl.results.headline), its use in the summary, older summaries, and the
sensitivity of a claim to the scored step (samrl.results.comparison)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.runs import write_run

from samrl.results import comparison
from samrl.results.aggregate import aggregate_summary, read_summary, summarize_runs
from samrl.results.headline import (
    HEADLINE,
    HEADLINE_N,
    headline_rows,
    headline_score,
)


def evals(scores: list[float], every: int = 1000) -> pd.DataFrame:
    steps = every * np.arange(1, len(scores) + 1)
    return pd.DataFrame({"step": steps, "normalized_score": scores})


@pytest.mark.parametrize(
    ("n_evals", "averaged"),
    [(25, 6), (20, 5), (10, 3), (5, 3), (3, 3), (2, 2), (1, 1), (0, 0)],
)
def test_headline_averages_the_last_fifth_at_least_three(n_evals: int, averaged: int) -> None:
    # 25 evaluations every 200 steps: steps >= 4000 are 4000..5000, 6 of them; 5: the last 3
    frame = evals(list(range(n_evals)), every=5000 // max(n_evals, 1))
    assert len(headline_rows(frame["step"])) == averaged
    score, n = headline_score(frame)
    assert n == averaged
    if averaged:
        assert score == pytest.approx(np.mean(range(n_evals)[-averaged:]))
    else:
        assert np.isnan(score)


def test_summary_has_the_headline_beside_final_and_best(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", rho=0.0, seed=1, score=60.0, n_epochs=5)
    frame = pd.read_csv(run / "eval.csv")
    frame["normalized_score"] = [10.0, 90.0, 30.0, 60.0, 30.0]
    frame.to_csv(run / "eval.csv", index=False)
    summary, aggregate = summarize_runs([run], n_boot=20)
    row = summary.iloc[0]
    assert row[HEADLINE] == pytest.approx(40.0) and row[HEADLINE_N] == 3  # mean(30, 60, 30)
    assert row["final_normalized_score"] == 30.0 and row["best_normalized_score"] == 90.0
    assert aggregate["prob_improvement_metric"].iloc[0] == HEADLINE
    assert aggregate[f"{HEADLINE}_iqm"].iloc[0] == pytest.approx(40.0)


def test_an_older_summary_is_read(tmp_path: Path) -> None:
    # summary.csv of an earlier samrl: no optim.networks, no headline columns
    runs = [write_run(tmp_path / f"r{r}_{s}", rho=r, seed=s) for s in range(3) for r in (0.0, 0.05)]
    summary, _ = summarize_runs(runs, n_boot=20)
    old = summary.drop(columns=["optim.networks", HEADLINE, "headline_return", HEADLINE_N])
    old.to_csv(tmp_path / "summary.csv", index=False)
    aggregate = aggregate_summary(old, ["optim.rho"], n_boot=20)  # KeyError before
    assert list(aggregate["n"]) == [3, 3]
    assert aggregate["prob_improvement_metric"].iloc[0] == "final_normalized_score"
    upgraded = read_summary(tmp_path / "summary.csv")
    assert {"optim.networks", HEADLINE, HEADLINE_N} <= set(upgraded.columns)
    assert len(aggregate_summary(upgraded, ["optim.rho"], n_boot=20)) == 2


def runs_of(headline: list[float], final: list[float], best: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "seed": range(len(headline)),
            HEADLINE: headline,
            "final_normalized_score": final,
            "best_normalized_score": best,
        }
    )


def test_a_claim_that_flips_with_the_scored_step_is_no_claim() -> None:
    adam = runs_of([80.0, 82, 84, 86, 88], [80.0, 82, 84, 86, 88], [90.0, 91, 92, 93, 94])
    holds = runs_of([60.0, 62, 64, 66, 68], [50.0, 52, 54, 56, 58], [70.0, 71, 72, 73, 74])
    cells = comparison.versus_by_score(holds, adam, n_boot=200, seed=0)
    assert cells["diff"] == pytest.approx(-20.0) and cells["diff_final"] == pytest.approx(-30.0)
    assert cells["direction"] == comparison.LOWER
    assert cells["sensitivity"] == comparison.HOLDS and not comparison.depends(cells)
    # lower under the headline, higher under the final evaluation
    flips = runs_of([60.0, 62, 64, 66, 68], [90.0, 92, 94, 96, 98], [70.0, 71, 72, 73, 74])
    cells = comparison.versus_by_score(flips, adam, n_boot=200, seed=0)
    assert cells["direction_final"] == comparison.HIGHER
    assert cells["sensitivity"] == comparison.DEPENDS and comparison.depends(cells)
    text = comparison.verdict_text(cells["direction"], None, True, comparison.depends(cells))
    assert text == "no claim (depends on the scored step): SAM lower"
    assert comparison.sensitivity_text(pd.Series(cells)).endswith("(depends on the scored step)")
    # no claim under the headline: no sensitivity verdict at all
    same = comparison.versus_by_score(adam, adam, n_boot=200, seed=0)
    assert same["direction"] == comparison.NONE and same["sensitivity"] is None


def test_the_held_out_split_is_said_per_row() -> None:
    mixed = pd.DataFrame({"dataset.test_fraction": [0.0, 0.1, 0.1, None]})
    assert comparison.split_text(mixed) == "0/0.1"  # a row mixing two sweeps says both
    assert comparison.split_text(pd.DataFrame({"seed": [0]})) == "?"  # an older summary
