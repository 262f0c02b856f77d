"""Spearman correlation of sharpness and score (samrl.results.stats, .rank_correlation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.sweeps import Point, write_point_sweep
from scipy import stats as scipy_stats

from samrl.results import stats
from samrl.results.aggregate import compute_sweep_tables
from samrl.results.rank_correlation import (
    ACROSS,
    ALL_RUNS,
    WITHIN,
    rank_correlations,
    within_cell_spearman,
)
from samrl.results.report import write_report

N_BOOT = 300


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_and_its_ci_contains_it(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=12)
    y = 0.6 * x + rng.normal(size=12)
    x[3] = x[4]  # a tie: mean ranks
    expected = scipy_stats.spearmanr(x, y).statistic
    assert stats.spearman(x, y) == pytest.approx(expected, abs=1e-12)
    low, high = stats.spearman_ci(x, y, n_boot=N_BOOT, seed=seed)
    assert -1.0 <= low <= expected <= high <= 1.0
    assert stats.spearman_ci(x, y, n_boot=N_BOOT, seed=seed) == (low, high)  # seeded


def test_spearman_undefined_cases() -> None:
    assert np.isnan(stats.spearman([1.0, 2.0], [2.0, 1.0]))
    assert np.isnan(stats.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="3 values"):
        stats.spearman([1.0, 2.0, 3.0], [1.0])


def test_difference_ci_paired_and_unpaired() -> None:
    x = np.array([1.0, 5.0, 2.0, 8.0, 3.0])
    # paired: a constant shift per seed gives a one-point interval
    assert stats.difference_ci(x + 2.0, x, paired=True, n_boot=N_BOOT) == pytest.approx((2, 2))
    low, high = stats.difference_ci(x + 2.0, x, paired=False, n_boot=N_BOOT)
    assert low < 2.0 < high
    with pytest.raises(ValueError, match="same number"):
        stats.difference_ci(x, x[:3], paired=True)


def test_rank_correlations_of_a_sweep(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    points = []
    for algo, sign in (("td3", -1.0), ("cql", 1.0)):
        for nets in (None, ["critic"], ["actor"]):
            scores = list(rng.uniform(0, 100, size=4))
            sharp = [sign * s / 100 + 0.01 * rng.normal() for s in scores]
            worst = list(rng.uniform(0, 1, size=4))
            points.append(
                Point(
                    algo,
                    scores,
                    networks=nets,
                    sharpness={"critic_rho0.05_sharpness": sharp},
                    posthoc={("critic", 0.05): worst},
                )
            )
    sweep = write_point_sweep(tmp_path / "study", points)
    tables = compute_sweep_tables(sweep, n_boot=50)
    table = rank_correlations(tables.summary, sweep, n_boot=N_BOOT)
    assert set(table["measure"]) == {
        "critic_rho0.05_sharpness",
        "posthoc_critic_rho0.05_worst_case",
    }
    assert set(table["ranking"]) == {ACROSS, WITHIN}
    within = table[table["ranking"] == WITHIN].set_index(["measure", "scope"])
    rows = table[table["ranking"] == ACROSS].set_index(["measure", "scope"])
    summary = tables.summary
    for scope in (ALL_RUNS, "td3", "cql"):
        runs = summary if scope == ALL_RUNS else summary[summary["algo.name"] == scope]
        # the final epoch's probe value, read back from each run's CSV another way
        probe = [
            pd.read_csv(sweep / r / "sharpness.csv")["critic_rho0.05_sharpness"].iloc[-1]
            for r in runs["run_dir"]
        ]
        row = rows.loc[("critic_rho0.05_sharpness", scope)]
        expected = scipy_stats.spearmanr(probe, runs["headline_normalized_score"]).statistic
        assert row["n"] == len(runs) and row["spearman"] == pytest.approx(expected)
        assert row["ci_low"] <= row["spearman"] <= row["ci_high"]
        worst = rows.loc[("posthoc_critic_rho0.05_worst_case", scope)]
        expected = scipy_stats.spearmanr(
            runs["posthoc_critic_rho0.05_worst_case"], runs["headline_normalized_score"]
        ).statistic
        assert worst["spearman"] == pytest.approx(expected)
    assert rows.loc[("critic_rho0.05_sharpness", "td3"), "spearman"] < -0.9
    assert rows.loc[("critic_rho0.05_sharpness", "cql"), "spearman"] > 0.9
    # within each cell the probe follows the score too (it is built from it, plus noise)
    for scope, sign in (("td3", -1), ("cql", 1)):
        row = within.loc[("critic_rho0.05_sharpness", scope)]
        assert sign * row["spearman"] > 0.5 and row["ci_low"] <= row["spearman"] <= row["ci_high"]

    report = write_report(sweep, n_boot=50)
    text = report.read_text()
    assert "## Does sharpness rank runs as their scores do?" in text
    assert "`critic_rho0.05_sharpness` | TD3 | across runs | 12 |" in text
    assert (sweep / "rank_correlation.csv").is_file()
    assert "Each evaluation averages the returns of 10 episodes (24 runs)" in text
    assert "## Adam baselines: do they learn?" in text


def test_within_cell_ranking_ignores_differences_between_cells() -> None:
    # two cells far apart; inside each, x and y rank in opposite orders
    x = np.array([1.0, 2.0, 3.0, 10.0, 11.0, 12.0])
    y = np.array([3.0, 2.0, 1.0, 30.0, 20.0, 10.0])
    cells = np.array([0, 0, 0, 1, 1, 1])
    assert stats.spearman(x, y) > 0  # across runs, the cells make it positive
    rho, low, _ = within_cell_spearman(x, y, cells, n_boot=50, seed=0)
    assert rho == pytest.approx(-1.0) and low == pytest.approx(-1.0)
