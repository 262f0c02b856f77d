"""Aggregate statistics over seeds, after Agarwal et al. 2021 ("Deep RL at the edge of the
statistical precipice", the rliable library), written with numpy/scipy only because rliable
1.2.0 does not import with pandas 3.

Scores come either as one 1-D array (one task), a 2-D array of shape (runs, tasks), or a list of
1-D arrays, one per task, which may differ in length (a task with a failed seed has fewer runs).
Tasks are the strata of the stratified bootstrap: runs are resampled within each task, never
across tasks.

IQM (interquartile mean) uses `scipy.stats.trim_mean(scores, 0.25)` on all scores flattened,
exactly as rliable does. trim_mean drops `int(0.25 * n)` values (rounded down) from each end and
averages the rest with equal weights, so when n is not divisible by 4 more than half of the values
are kept: n = 5, 6, 7 drop one value at each end; n <= 3 drops nothing (IQM = mean).

Every random draw goes through `numpy.random.default_rng(seed)`: same inputs and seed, same
result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

#: Scores of one or several tasks: 1-D array, 2-D (runs, tasks) array, or list of 1-D arrays.
Scores = np.ndarray | Sequence[Any]
Statistic = Callable[[Any], float]

DEFAULT_N_BOOT = 2000
DEFAULT_CONFIDENCE = 0.95


def as_task_list(scores: Scores) -> list[np.ndarray]:
    """Scores as a list of 1-D float arrays, one per task, NaNs dropped.

    A numpy array is one task (1-D) or (runs, tasks) (2-D); a list or tuple of 1-D sequences
    is one sequence per task (lengths may differ); a list of numbers is one task.
    """
    if not isinstance(scores, np.ndarray) and _is_task_list(scores):
        tasks = [np.asarray(task, dtype=float).ravel() for task in scores]
    else:
        array = np.asarray(scores, dtype=float)
        if array.ndim <= 1:
            tasks = [array.reshape(-1)]
        elif array.ndim == 2:
            tasks = [array[:, t] for t in range(array.shape[1])]
        else:
            raise ValueError(f"scores must be 1-D or 2-D (runs, tasks), got shape {array.shape}")
    return [task[~np.isnan(task)] for task in tasks]


def _is_task_list(scores: Sequence[Any]) -> bool:
    """True for a non-empty list whose items are all 1-D sequences (one per task)."""
    items = list(scores)
    return bool(items) and all(np.ndim(item) == 1 for item in items)


def _flat(scores: Scores) -> np.ndarray:
    tasks = as_task_list(scores)
    return np.concatenate(tasks) if tasks else np.empty(0)


def iqm(scores: Scores) -> float:
    """Interquartile mean of all scores (rliable's definition); NaN when there is none.

    Same as `scipy.stats.trim_mean(flattened, 0.25)`: `int(0.25 * n)` values are dropped at
    each end, e.g. [1, 2, ..., 8] -> mean(3, 4, 5, 6) = 4.5; [1, 2, 3, 4, 100] -> mean(2, 3, 4).
    """
    flat = _flat(scores)
    if flat.size == 0:
        return float("nan")
    return float(_scipy_stats.trim_mean(flat, 0.25))


def mean(scores: Scores) -> float:
    """Mean of all scores; NaN when there is none."""
    flat = _flat(scores)
    return float(flat.mean()) if flat.size else float("nan")


def median(scores: Scores) -> float:
    """Median of all scores; NaN when there is none."""
    flat = _flat(scores)
    return float(np.median(flat)) if flat.size else float("nan")


# Row-wise versions of the flattening statistics: each row of a (n_boot, n_scores) matrix is one
# bootstrap replicate, so 2000 replicates cost one numpy call instead of 2000 Python calls.
_ROWWISE: dict[Statistic, Callable[[np.ndarray], np.ndarray]] = {
    iqm: lambda m: _scipy_stats.trim_mean(m, 0.25, axis=1),
    mean: lambda m: m.mean(axis=1),
    median: lambda m: np.median(m, axis=1),
}


def _percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    replicates = replicates[~np.isnan(replicates)]
    if replicates.size == 0:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def _check(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def stratified_bootstrap_ci(
    scores_by_task: Scores,
    statistic: Statistic = iqm,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval (low, high) of `statistic(scores_by_task)`.

    Each replicate resamples, with replacement, the runs of every task independently (tasks are
    strata), keeping each task's number of runs, then applies `statistic` to the replicate, which
    has the same form as the input (a list of arrays for list input). NaNs are dropped first.
    (NaN, NaN) when there is no score at all.
    """
    _check(n_boot, confidence)
    tasks = [task for task in as_task_list(scores_by_task) if task.size]
    if not tasks:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # Draw every task's indices up front, in task order, so the result depends only on the seed.
    resampled = [task[rng.integers(0, task.size, size=(n_boot, task.size))] for task in tasks]
    rowwise = _ROWWISE.get(statistic)
    if rowwise is not None:
        replicates = rowwise(np.concatenate(resampled, axis=1))
    else:
        # A 2-D input gives 2-D replicates unless dropped NaNs made the tasks ragged.
        as_matrix = isinstance(scores_by_task, np.ndarray) and len({t.size for t in tasks}) == 1
        replicates = np.array(
            [
                statistic(
                    np.stack([r[b] for r in resampled], axis=1)
                    if as_matrix
                    else [r[b] for r in resampled]
                )
                for b in range(n_boot)
            ],
            dtype=float,
        )
    return _percentile_interval(replicates, confidence)


def _pairwise_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + 0.5 P(X = Y) over all n*m pairs, i.e. Mann-Whitney U / (n m)."""
    difference = x[:, None] - y[None, :]
    return float(np.mean((difference > 0) + 0.5 * (difference == 0)))


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """Probability that a run of X scores higher than a run of Y (ties count one half).

    Per task: P(X > Y) + 0.5 P(X = Y) over all pairs of one X run and one Y run (the
    Mann-Whitney U statistic divided by n*m); with several tasks, the average over tasks
    (Agarwal et al. 2021). Example: x = [1, 2], y = [0, 3] -> pairs (1,0) (1,3) (2,0) (2,3)
    -> (1 + 0 + 1 + 0) / 4 = 0.5. NaN when a task has no run on either side.
    """
    x_tasks, y_tasks = _matched_tasks(x, y)
    if not x_tasks:
        return float("nan")
    values = [
        _pairwise_improvement(xt, yt) if xt.size and yt.size else float("nan")
        for xt, yt in zip(x_tasks, y_tasks, strict=True)
    ]
    return float(np.mean(values))


def _matched_tasks(x: Scores, y: Scores) -> tuple[list[np.ndarray], list[np.ndarray]]:
    x_tasks, y_tasks = as_task_list(x), as_task_list(y)
    if len(x_tasks) != len(y_tasks):
        raise ValueError(f"x has {len(x_tasks)} tasks but y has {len(y_tasks)}")
    return x_tasks, y_tasks


def probability_of_improvement_ci(
    x: Scores,
    y: Scores,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    paired: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap CI (low, high) of `probability_of_improvement(x, y)`.

    Unpaired (rliable's choice): the runs of X and the runs of Y are resampled independently
    within each task. Paired: X and Y have one run per shared seed, in the same order (x[i] and
    y[i] used the same seed, no NaN), and one resample of seed indices is applied to both
    sides, which keeps the correlation that shared seeds (same data order, same initial
    weights) create. The
    statistic itself always compares all pairs, paired or not.
    """
    _check(n_boot, confidence)
    x_tasks, y_tasks = _matched_tasks(x, y)
    if paired and any(xt.size != yt.size for xt, yt in zip(x_tasks, y_tasks, strict=True)):
        raise ValueError("paired bootstrap needs the same number of runs of x and y in each task")
    kept = [(xt, yt) for xt, yt in zip(x_tasks, y_tasks, strict=True) if xt.size and yt.size]
    if not kept:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    per_task = []
    for xt, yt in kept:
        x_index = rng.integers(0, xt.size, size=(n_boot, xt.size))
        y_index = x_index if paired else rng.integers(0, yt.size, size=(n_boot, yt.size))
        difference = xt[x_index][:, :, None] - yt[y_index][:, None, :]
        per_task.append(np.mean((difference > 0) + 0.5 * (difference == 0), axis=(1, 2)))
    replicates = np.mean(per_task, axis=0)
    return _percentile_interval(replicates, confidence)


def performance_profile(
    scores_by_task: Scores,
    taus: Sequence[float] | np.ndarray,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-score distribution (rliable's performance profile): for each threshold tau, the
    fraction of runs scoring above tau, averaged over tasks (each task weighs the same), with a
    stratified percentile bootstrap band. Returns (fraction, low, high), one value per tau."""
    _check(n_boot, confidence)
    taus = np.asarray(taus, dtype=float)
    tasks = [task for task in as_task_list(scores_by_task) if task.size]
    if not tasks:
        nan = np.full(taus.shape, np.nan)
        return nan, nan.copy(), nan.copy()

    def profile(groups: list[np.ndarray]) -> np.ndarray:
        # groups[i]: (..., runs) scores of task i -> (..., taus) fraction above each tau
        return np.mean([np.mean(g[..., None] > taus, axis=-2) for g in groups], axis=0)

    fraction = profile(tasks)
    rng = np.random.default_rng(seed)
    resampled = [task[rng.integers(0, task.size, size=(n_boot, task.size))] for task in tasks]
    replicates = profile(resampled)  # (n_boot, taus)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail], axis=0)
    return fraction, low, high


def difference_ci(
    x: np.ndarray,
    y: np.ndarray,
    statistic: Statistic = iqm,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    paired: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap CI (low, high) of `statistic(x) - statistic(y)` for one task.

    Unpaired: x's and y's runs are resampled independently. Paired: x[i] and y[i] share a seed
    (same length, no NaN) and one resample of seed indices is applied to both sides, which keeps
    the correlation shared seeds create (as in `probability_of_improvement_ci`). (NaN, NaN)
    when either side has no run.
    """
    _check(n_boot, confidence)
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if paired and x.size != y.size:
        raise ValueError("paired bootstrap needs the same number of runs of x and y")
    if not paired:
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if x.size == 0 or y.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    x_index = rng.integers(0, x.size, size=(n_boot, x.size))
    y_index = x_index if paired else rng.integers(0, y.size, size=(n_boot, y.size))
    rowwise = _ROWWISE.get(statistic)
    if rowwise is not None:
        replicates = rowwise(x[x_index]) - rowwise(y[y_index])
    else:
        replicates = np.array(
            [statistic(x[i]) - statistic(y[j]) for i, j in zip(x_index, y_index, strict=True)]
        )
    return _percentile_interval(replicates, confidence)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks (ties get their mean
    rank). NaN with fewer than 3 pairs or when either side is constant."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.size != y.size:
        raise ValueError(f"x has {x.size} values but y has {y.size}")
    if x.size < 3:
        return float("nan")
    return float(_rank_correlations(x[None, :], y[None, :])[0])


def _rank_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman correlation of two (rows, n) matrices; NaN for a constant row."""
    rx = _scipy_stats.rankdata(x, axis=1)
    ry = _scipy_stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(axis=1) / denominator, np.nan)


def spearman_ci(
    x: np.ndarray,
    y: np.ndarray,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of `spearman(x, y)`, resampling (x, y) pairs (runs) with
    replacement; replicates with a constant side (undefined correlation) are dropped."""
    _check(n_boot, confidence)
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.size != y.size:
        raise ValueError(f"x has {x.size} values but y has {y.size}")
    if x.size < 3:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, x.size, size=(n_boot, x.size))
    return _percentile_interval(_rank_correlations(x[index], y[index]), confidence)
