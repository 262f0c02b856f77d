"""The Adam baseline level of each (algorithm, dataset): does the plain optimizer learn there?

A SAM difference means something only over a baseline that learns: around an untrained network
"SAM lowers the score" describes noise. Every table that compares SAM with Adam marks its rows
with this level.

Per (algorithm, dataset), over the *completed* Adam runs (optim.name a base optimizer):
- the headline normalized score's IQM (samrl.results.headline: the mean over the evaluations of
  the last 20% of training, so that one noisy evaluation does not decide a verdict) with its
  stratified-bootstrap 95% CI and n (samrl.results.stats), and how many evaluations each run
  averaged;
- the behaviour policy's normalized return on that dataset: for built-ins the recorded
  `behaviour_return_mean` of the cached file's metadata, for other datasets the mean episode
  return in the file, normalized with the dataset's references;
- how many episodes each evaluation used (train.eval_episodes of the runs' configs).

Verdict "learns" iff each evaluation averaged at least MIN_EVAL_EPISODES episodes and the IQM
reaches the behaviour policy's normalized return + BEHAVIOUR_MARGIN and, on pendulum, LEVEL
(DESIGN.md section 8): a baseline at the behaviour level has learned nothing the data did not
already hold. "does not learn" when the IQM misses a bar; "unknown" when there is no completed
Adam run, no normalized score, too few evaluation episodes, or no behaviour return to compare
with. `reason` says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samrl.errors import SamrlError
from samrl.results import stats
from samrl.results.headline import HEADLINE, HEADLINE_N
from samrl.results.paper import algo_name
from samrl.results.runs import get_path, read_config, run_path
from samrl.sam.variants import is_base
from samrl.status import RunStatus

#: The normalized score an Adam baseline must reach on pendulum (issue 20), whose behaviour
#: level (46.4) alone would pass a baseline no better than the data.
LEVEL = 50.0
#: Points above the behaviour policy's normalized return a learning baseline must reach.
BEHAVIOUR_MARGIN = 5.0
#: Episodes the final evaluation must average over for a verdict.
MIN_EVAL_EPISODES = 10
LEARNS, NOT_LEARNING, UNKNOWN = "learns", "does not learn", "unknown"
SCORE = HEADLINE
COLUMNS = (
    "algo.name",
    "dataset.name",
    "n",
    "iqm",
    "ci_low",
    "ci_high",
    "n_evals",
    "eval_episodes",
    "behaviour_return",
    "behaviour_normalized",
    "verdict",
    "reason",
)


@dataclass(frozen=True)
class Behaviour:
    """The behaviour policy's mean episode return on a dataset, raw and normalized (NaN when
    unknown, with `note` saying why)."""

    mean_return: float
    normalized: float
    note: str


def behaviour_of(dataset: Mapping[str, Any]) -> Behaviour:
    """The behaviour policy's return on the dataset a run's `dataset` config section names.

    Nothing is generated: a built-in that is not cached says how to make it."""
    from samrl.data import normalized_score
    from samrl.data.builtin import BUILTINS, cache_path
    from samrl.data.hdf5 import read_metadata
    from samrl.data.sources import describe, read_user_data

    name = str(dataset.get("name"))
    size, seed = dataset.get("size"), int(dataset.get("seed") or 0)
    nan = float("nan")
    try:
        info = describe(name)
        if info.kind == "builtin":
            builtin = BUILTINS[name]
            path = cache_path(builtin, int(size or builtin.default_size), seed)
            if not path.is_file():
                return Behaviour(
                    nan,
                    nan,
                    f"not cached (samrl data make {name} --size "
                    f"{size or builtin.default_size} --seed {seed})",
                )
            value = read_metadata(path).get("behaviour_return_mean")
            if not isinstance(value, int | float):
                return Behaviour(nan, nan, f"{path.name}: no behaviour_return_mean")
            mean_return, note = float(value), "behaviour_return_mean of the built-in"
        else:
            data, _, _ = read_user_data(info, progress=False)
            if size is not None:
                data = data.head(int(size))
            returns = data.episode_returns()
            if not len(returns):
                return Behaviour(nan, nan, "no episodes in the file")
            mean_return, note = float(np.mean(returns)), "mean episode return in the file"
    except SamrlError as exc:
        return Behaviour(nan, nan, str(exc).splitlines()[0])
    score = normalized_score(mean_return, info)
    return Behaviour(mean_return, nan if score is None else score, note)


def adam_levels(
    summary: pd.DataFrame,
    sweep_dir: Path | None,
    n_boot: int = stats.DEFAULT_N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (algorithm, dataset) with Adam runs on its clean data (COLUMNS; see the
    module docstring): a run on corrupted data (`dataset.corruption`) trains on other data,
    whose level is no statement about the dataset."""
    from samrl.data.corruption import CLEAN, condition_of  # lazy: samrl.data imports d3rlpy

    # boolean masks as arrays: an empty list would select columns instead of rows
    base = summary.loc[np.array([is_base(name) for name in summary["optim.name"]], dtype=bool)]
    configs_of = {r: read_config(_run_dir(sweep_dir, r)) for r in base["run_dir"]}
    clean = [
        condition_of(get_path(configs_of[r], "dataset.corruption")) == CLEAN
        for r in base["run_dir"]
    ]
    base = base.loc[np.array(clean, dtype=bool)]
    base = base[base["dataset.name"].notna()]  # grid points with no run yet
    rows = []
    behaviours: dict[str, Behaviour] = {}
    for (algo, dataset), runs in base.groupby(
        ["algo.name", "dataset.name"], sort=False, dropna=False
    ):
        configs = [configs_of[r] for r in runs["run_dir"]]
        done = runs[runs["status"] == RunStatus.COMPLETED]
        scores = pd.to_numeric(done[SCORE], errors="coerce").dropna().to_numpy(float)
        low, high = stats.stratified_bootstrap_ci(scores, stats.iqm, n_boot=n_boot, seed=seed)
        episodes = sorted(
            {int(e) for e in (get_path(c, "train.eval_episodes") for c in configs) if e}
        )
        section = next((get_path(c, "dataset") for c in configs if get_path(c, "dataset")), None)
        key = repr(sorted((section or {"name": dataset}).items()))
        if key not in behaviours:
            behaviours[key] = behaviour_of(section or {"name": dataset})
        behaviour = behaviours[key]
        iqm = stats.iqm(scores)
        verdict, reason = _verdict(iqm, len(scores), episodes, behaviour, str(dataset))
        rows.append(
            {
                "algo.name": algo,
                "dataset.name": dataset,
                "n": len(scores),
                "iqm": iqm,
                "ci_low": low,
                "ci_high": high,
                "n_evals": distinct_counts(done, HEADLINE_N),
                "eval_episodes": "/".join(str(e) for e in episodes) or None,
                "behaviour_return": behaviour.mean_return,
                "behaviour_normalized": behaviour.normalized,
                "verdict": verdict,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def distinct_counts(runs: pd.DataFrame, column: str) -> str | None:
    """ "3" or "3/5": the distinct whole numbers of a column over runs (None without any)."""
    if column not in runs:
        return None
    values = sorted({int(v) for v in pd.to_numeric(runs[column], errors="coerce").dropna()})
    return "/".join(map(str, values)) or None


def _run_dir(sweep_dir: Path | None, relative: str) -> Path:
    return run_path(sweep_dir, relative) if sweep_dir is not None else Path(relative)


def floor_of(dataset: str) -> float | None:
    """The absolute level a baseline must reach on `dataset` besides the behaviour margin:
    LEVEL on pendulum (DESIGN.md section 8), none elsewhere."""
    return LEVEL if str(dataset).startswith("pendulum") else None


def bar_of(dataset: str, behaviour_normalized: float) -> float:
    """The IQM a learning baseline reaches: behaviour + BEHAVIOUR_MARGIN, at least the floor."""
    floor = floor_of(dataset)
    bar = behaviour_normalized + BEHAVIOUR_MARGIN
    return bar if floor is None else max(bar, floor)


def reaches_bar(iqm: float, dataset: str, behaviour_normalized: float) -> bool:
    """Whether an IQM passes the learning bar (False when either number is unknown)."""
    if np.isnan(iqm) or np.isnan(behaviour_normalized):
        return False
    return bool(iqm >= bar_of(dataset, behaviour_normalized))


def _verdict(
    iqm: float, n: int, episodes: list[int], behaviour: Behaviour, dataset: str
) -> tuple[str, str]:
    if n == 0 or np.isnan(iqm):
        return UNKNOWN, "no completed Adam run with a normalized score"
    if not episodes or min(episodes) < MIN_EVAL_EPISODES:
        used = "/".join(map(str, episodes)) or "an unknown number of"
        return UNKNOWN, f"evaluations on {used} episodes (< {MIN_EVAL_EPISODES})"
    floor = floor_of(dataset)
    if floor is not None and iqm < floor:
        return NOT_LEARNING, f"IQM {iqm:.1f} < {floor:g}"
    if np.isnan(behaviour.normalized):
        return UNKNOWN, f"IQM {iqm:.1f}; behaviour return unknown: {behaviour.note}"
    bar = behaviour.normalized + BEHAVIOUR_MARGIN
    if iqm < bar:
        return NOT_LEARNING, (
            f"IQM {iqm:.1f} < behaviour policy {behaviour.normalized:.1f} + {BEHAVIOUR_MARGIN:g}"
        )
    floor_text = "" if floor is None else f"{floor:g} and "
    return LEARNS, (
        f"IQM {iqm:.1f} >= {floor_text}behaviour policy {behaviour.normalized:.1f} "
        f"+ {BEHAVIOUR_MARGIN:g}"
    )


def level_of(levels: pd.DataFrame, algo: str, dataset: str) -> Mapping[str, Any] | None:
    """The level row of (algo, dataset), or None when it has no Adam runs."""
    rows = levels[(levels["algo.name"] == algo) & (levels["dataset.name"] == dataset)]
    return None if rows.empty else rows.iloc[0].to_dict()


def level_text(level: Mapping[str, Any] | None) -> str:
    """ "learns (Adam IQM 64.9 [55.1, 80.2], n=5)" for a table row's mark."""
    if level is None:
        return "no Adam runs"
    if not level["n"]:
        return f"{level['verdict']} (no completed Adam run)"
    return (
        f"{level['verdict']} (Adam IQM {level['iqm']:.1f} "
        f"[{level['ci_low']:.1f}, {level['ci_high']:.1f}], n={level['n']})"
    )


def level_rows(levels: pd.DataFrame) -> list[dict[str, str]]:
    """The levels as markdown table rows (report.md, seed_table.md)."""

    rows = []
    for _, level in levels.iterrows():
        interval = (
            "–"
            if not level["n"]
            else f"{level['iqm']:.1f} [{level['ci_low']:.1f}, {level['ci_high']:.1f}]"
        )
        behaviour = level["behaviour_normalized"]
        rows.append(
            {
                "algorithm": algo_name(level["algo.name"]),
                "dataset": str(level["dataset.name"]),
                "Adam headline normalized IQM [95% CI]": interval,
                "n": str(level["n"]),
                "evaluations averaged": str(level.get("n_evals") or "?"),
                "eval episodes": str(level["eval_episodes"] or "?"),
                "behaviour policy (normalized)": "?" if pd.isna(behaviour) else f"{behaviour:.1f}",
                "verdict": f"**{level['verdict']}**",
                "why": str(level["reason"]),
            }
        )
    return rows


LEVEL_RULE = (
    f"An Adam baseline **learns** when, over its completed runs, the headline normalized "
    f"score's IQM reaches the behaviour policy's own normalized return on that dataset + "
    f"{BEHAVIOUR_MARGIN:g} (and {LEVEL:g} on pendulum), each evaluation averaging at least "
    f"{MIN_EVAL_EPISODES} episodes. A SAM difference over a baseline that does not learn "
    "describes noise around an untrained network: it is reported, labelled, and makes no claim."
)
