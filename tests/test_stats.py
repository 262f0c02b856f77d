"""IQM, stratified bootstrap CIs and probability of improvement against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from samrl.results.stats import (
    as_task_list,
    iqm,
    mean,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
)


def test_iqm_of_one_to_eight() -> None:
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean(3, 4, 5, 6)
    assert iqm([1, 2, 3, 4, 5, 6, 7, 800]) == pytest.approx(4.5)  # outlier trimmed


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([5.0], 5.0),
        ([1.0, 2.0, 30.0], 11.0),  # n=3: int(0.75) = 0 trimmed -> plain mean
        ([1.0, 2.0, 3.0, 40.0], 2.5),  # n=4: one value trimmed per end
        ([1.0, 2.0, 3.0, 4.0, 100.0], 3.0),  # n=5: int(1.25) = 1 per end -> mean(2, 3, 4)
        ([1.0, 2.0, 3.0, 4.0, 5.0, 60.0, 70.0], 14.8),  # n=7: one per end -> mean(2..5, 60)
    ],
)
def test_iqm_when_n_is_not_a_multiple_of_four(values: list[float], expected: float) -> None:
    assert iqm(values) == pytest.approx(expected)


def test_iqm_flattens_tasks_and_ignores_nan() -> None:
    matrix = np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0], [4.0, 8.0]])  # runs x tasks
    assert iqm(matrix) == pytest.approx(4.5)
    assert iqm([[1, 2, 3], [4, 5, 6, 7, 8]]) == pytest.approx(4.5)  # ragged list of tasks
    assert iqm([1.0, np.nan, 3.0]) == pytest.approx(2.0)
    assert np.isnan(iqm([]))


def test_task_list_forms() -> None:
    assert [t.tolist() for t in as_task_list(np.array([[1, 2], [3, 4]]))] == [[1, 3], [2, 4]]
    assert [t.tolist() for t in as_task_list([[1, 2], [3, 4]])] == [[1, 2], [3, 4]]
    assert [t.tolist() for t in as_task_list([1, 2])] == [[1, 2]]


def test_bootstrap_ci_contains_estimate_and_is_deterministic() -> None:
    scores = np.array([0.3, 1.2, 2.0, 2.2, 3.5, 4.1, 5.0, 9.0])
    low, high = stratified_bootstrap_ci(scores, iqm, n_boot=500, seed=3)
    assert low <= iqm(scores) <= high
    assert (low, high) == stratified_bootstrap_ci(scores, iqm, n_boot=500, seed=3)
    assert (low, high) != stratified_bootstrap_ci(scores, iqm, n_boot=500, seed=4)
    assert scores.min() <= low < high <= scores.max()


def test_bootstrap_is_stratified() -> None:
    # Task 0 is all zeros, task 1 all tens: resampling within tasks keeps the mean exactly 5,
    # while resampling across tasks would not.
    tasks = [np.zeros(4), np.full(4, 10.0)]
    assert stratified_bootstrap_ci(tasks, mean, n_boot=300, seed=0) == (5.0, 5.0)
    matrix = np.stack(tasks, axis=1)
    assert stratified_bootstrap_ci(matrix, mean, n_boot=300, seed=0) == (5.0, 5.0)


def test_custom_statistic_matches_vectorized_path() -> None:
    scores = [np.array([1.0, 4.0, 2.0]), np.array([7.0, 3.0, 8.0, 5.0])]
    fast = stratified_bootstrap_ci(scores, iqm, n_boot=300, seed=1)
    slow = stratified_bootstrap_ci(scores, lambda s: iqm(s), n_boot=300, seed=1)
    assert fast == pytest.approx(slow)


def test_single_value_and_empty() -> None:
    assert stratified_bootstrap_ci([4.0], iqm, n_boot=50) == (4.0, 4.0)
    low, high = stratified_bootstrap_ci([], iqm, n_boot=50)
    assert np.isnan(low) and np.isnan(high)


def test_probability_of_improvement_known_pairs() -> None:
    # pairs (1,0) (1,3) (2,0) (2,3): wins 1, 0, 1, 0 -> 0.5
    assert probability_of_improvement([1, 2], [0, 3]) == pytest.approx(0.5)
    # (2,1) win, (2,2) tie, (3,1) win, (3,2) win -> 3.5 / 4
    assert probability_of_improvement([2, 3], [1, 2]) == pytest.approx(0.875)
    assert probability_of_improvement([5, 6], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [5, 6]) == 0.0


def test_probability_of_improvement_is_mann_whitney_u() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 7).astype(float), rng.integers(0, 5, 6).astype(float)
    u = mannwhitneyu(x, y).statistic
    assert probability_of_improvement(x, y) == pytest.approx(u / (7 * 6))


def test_probability_of_improvement_averages_tasks() -> None:
    x = [np.array([1.0, 2.0]), np.array([5.0])]
    y = [np.array([0.0, 3.0]), np.array([1.0])]
    assert probability_of_improvement(x, y) == pytest.approx((0.5 + 1.0) / 2)


def test_probability_of_improvement_ci() -> None:
    x, y = np.array([2.0, 3.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0, 2.5])
    estimate = probability_of_improvement(x, y)
    for paired in (False, True):
        low, high = probability_of_improvement_ci(x, y, n_boot=400, seed=2, paired=paired)
        assert 0.0 <= low <= estimate <= high <= 1.0
        assert (low, high) == probability_of_improvement_ci(x, y, n_boot=400, seed=2, paired=paired)
    with pytest.raises(ValueError, match="paired"):
        probability_of_improvement_ci(x, y[:3], paired=True)


def test_performance_profile_by_hand() -> None:
    from samrl.results.stats import performance_profile

    tasks = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 20.0])]
    taus = [0.0, 2.5, 15.0, 100.0]
    fraction, low, high = performance_profile(tasks, taus, n_boot=300, seed=1)
    # task 1: 4/4, 2/4, 0/4, 0/4 above; task 2: 2/2, 2/2, 1/2, 0/2; tasks weigh the same
    assert fraction.tolist() == [1.0, 0.75, 0.25, 0.0]
    assert np.all(low <= fraction) and np.all(fraction <= high)
    assert low[0] == high[0] == 1.0 and low[-1] == high[-1] == 0.0
