"""The corruption table: does SAM help IQL and RIQL on corrupted data, as arXiv 2511.17568
reports (samrl.results.corruption_reference), and what does corruption do to sharpness?

From a sweep over data conditions (clean and corrupted: samrl.data.corruption.condition_of of
each run's `dataset.corruption`) x algorithm x Adam / SAM, per (condition, algorithm, dataset,
SAM setting), over completed runs:

- n, the headline normalized score's IQM (samrl.results.headline) with its
  stratified-bootstrap 95% CI, for Adam and SAM, and how many evaluations each headline averaged;
- SAM minus Adam (difference of IQMs) and P(SAM > Adam), each with a bootstrap 95% CI pairing
  seeds when both completed the same ones, and the difference under the final and the best
  evaluation: a claim whose direction changes between them "depends on the scored step" and
  makes no claim (samrl.results.comparison);
- the sharpness at the fixed measuring radius (`optim.probe`: every run, Adam included, logs
  L(w + eps) - L(w) at the same rho), the mean of its last 10 measurements per run, IQM over
  runs, per network, for Adam and SAM: clean against corrupted is read down a column;
- the paper's scores (mean over its tasks), its direction and whether ours agrees. The data
  differ (pendulum here, D4RL there), so only directions are compared, never values;
- the clean Adam baseline level of the algorithm (samrl.results.baselines); a row is a claim
  only where Adam learns both on clean data and on the row's own data (the same bar:
  samrl.results.baselines.reaches_bar): under corruption a failing Adam leaves SAM's
  difference saying only whether SAM rescues it;
- the held-out split (`dataset.test_fraction`) of the runs, since it changes the training
  data: a table that mixes sweeps says which split each row trained without.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samrl.data.corruption import CLEAN, condition_of
from samrl.errors import RunError
from samrl.metrics import (
    fixed_radius_parts,
    is_last10,
    side_sharpness_name,
    side_sharpness_networks,
)
from samrl.results import comparison, stats
from samrl.results.aggregate import SweepTables
from samrl.results.baselines import LEARNS, distinct_counts, level_of, level_text, reaches_bar
from samrl.results.corruption_reference import SOURCE, paper_score, paper_tasks
from samrl.results.headline import HEADLINE, HEADLINE_N, HEADLINE_TEXT
from samrl.results.labels import sam_networks
from samrl.results.paper import algo_name, markdown_table
from samrl.results.runs import get_path, read_config, run_path
from samrl.rundir import CORRUPTION_TABLE_FILES, atomic_write, write_csv_atomic
from samrl.sam.variants import is_base
from samrl.status import RunStatus

SCORE = HEADLINE
#: Conditions in the order a reader compares them; others follow by name.
CONDITION_ORDER = (CLEAN, "random observations", "random mixed", "adversarial observations")
ALGO_ORDER = ("iql", "riql")


def probe_columns(summary: pd.DataFrame) -> tuple[dict[str, str], float | None]:
    """(network -> summary column of its sharpness at the fixed radius, that radius); the
    smallest radius when runs probed several."""
    probes = {
        column: parts
        for column in summary.columns
        if is_last10(column) and (parts := fixed_radius_parts(column)) and not parts[2]
    }
    if not probes:
        return {}, None
    radius = min(float(rho) for _, rho, _ in probes.values())
    return {net: c for c, (net, rho, _) in probes.items() if float(rho) == radius}, radius


def _sam_text(name: str, rho: float, networks: frozenset[str]) -> str:
    """ "SAM rho 0.05 on critic"; a run whose config names no networks steps them all."""
    return f"{name.upper()} rho {rho:g} on {'+'.join(sorted(networks)) or 'all networks'}"


def _runs(tables: SweepTables, sweep_dir: Path) -> pd.DataFrame:
    summary = tables.summary
    done = summary[summary["status"] == RunStatus.COMPLETED].copy()
    done[SCORE] = pd.to_numeric(done[SCORE], errors="coerce")
    done = done[done[SCORE].notna()]
    if done.empty:
        raise RunError("no completed run with a headline normalized score: no corruption table yet")
    configs = [read_config(run_path(sweep_dir, r)) for r in done["run_dir"]]
    done["condition"] = [condition_of(get_path(c, "dataset.corruption")) for c in configs]
    done["sam"] = [
        ""
        if is_base(get_path(c, "optim.name"))
        else _sam_text(
            str(get_path(c, "optim.name")),
            float(get_path(c, "optim.rho")),
            sam_networks(get_path(c, "optim.name"), get_path(c, "optim.networks")),
        )
        for c in configs
    ]
    return done


#: What a clean run borrowed from another sweep must share with this sweep's runs of the same
#: algorithm, so the two sides of a row differ only by the corruption (and the seeds' draws).
SHARED_KEYS = (
    "algo",
    "dataset.name",
    "dataset.size",
    "dataset.sha256",
    "dataset.test_fraction",
    "train.n_steps",
    "train.n_steps_per_epoch",
    "train.eval_episodes",
    "optim.probe",
)


def _mismatch(theirs: dict[str, Any], ours: dict[str, Any]) -> str | None:
    """The first SHARED_KEYS entry two run configs disagree on, as "key: a != b"."""
    for key in SHARED_KEYS:
        mine, other = get_path(ours, key), get_path(theirs, key)
        if key == "dataset.name" or mine == other:
            continue
        return f"{key}: {other!r} != {mine!r}"
    return None


def borrow_clean(
    tables: SweepTables, sweep_dir: Path, others: Sequence[tuple[Path, SweepTables]]
) -> tuple[SweepTables, list[str]]:
    """`tables` plus, from each (directory, tables) of another sweep, the clean-data runs of
    every (algorithm, dataset) that `tables` holds only corrupted runs of, Adam and the SAM
    settings this sweep ran, with their clean Adam levels; and one line per borrowed cell.

    A clean cell that a study already trained need not be trained again (the MuJoCo corruption
    sweep takes IQL's clean cells from the MuJoCo study this way), but only when it was trained
    the same way: a borrowed run whose SHARED_KEYS differ from this sweep's is refused. The
    borrowed runs' run_dir is made absolute, so the table reads them where they are."""
    own = _runs(tables, sweep_dir)
    summary, levels = tables.summary, tables.baselines
    notes = []
    for other_dir, other in others:
        have = set(zip(own["algo.name"], own["dataset.name"], own["condition"], strict=True))
        theirs = _runs(other, other_dir)
        wanted = [
            condition == CLEAN
            and (algo, dataset, CLEAN) not in have
            and (algo, dataset) in {(a, d) for a, d, _ in have}
            and setting in set(own["sam"])
            for algo, dataset, condition, setting in zip(
                theirs["algo.name"],
                theirs["dataset.name"],
                theirs["condition"],
                theirs["sam"],
                strict=True,
            )
        ]
        taken = theirs[pd.Series(wanted, index=theirs.index)]
        for (algo, dataset), runs in taken.groupby(["algo.name", "dataset.name"], sort=False):
            mine = own[(own["algo.name"] == algo) & (own["dataset.name"] == dataset)]
            ours = read_config(run_path(sweep_dir, mine["run_dir"].iloc[0]))
            for run_dir in runs["run_dir"]:
                differs = _mismatch(read_config(run_path(other_dir, run_dir)), ours)
                if differs:
                    raise RunError(
                        f"{other_dir}: {run_dir} was not trained as {sweep_dir}'s {algo} runs "
                        f"({differs}); its clean cell cannot be borrowed"
                    )
            notes.append(f"{algo_name(algo)} on clean {dataset}: {len(runs)} runs from {other_dir}")
            theirs_level = other.baselines
            theirs_level = theirs_level[
                (theirs_level["algo.name"] == algo) & (theirs_level["dataset.name"] == dataset)
            ]
            levels = pd.concat([levels, theirs_level], ignore_index=True)
        borrowed = other.summary.loc[taken.index].copy()
        borrowed["run_dir"] = [str(run_path(other_dir, r).resolve()) for r in borrowed["run_dir"]]
        summary = pd.concat([summary, borrowed], ignore_index=True)
    return replace(tables, summary=summary, baselines=levels), notes


def _order(values: pd.Series, first: tuple[str, ...]) -> list[str]:
    unique = list(dict.fromkeys(values))
    return sorted(unique, key=lambda v: (v not in first, first.index(v) if v in first else 0, v))


def _iqm_cells(prefix: str, runs: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    values = comparison.scores_by_seed(runs).to_numpy(float)
    low, high = stats.stratified_bootstrap_ci(values, stats.iqm, n_boot=n_boot, seed=seed)
    return {
        f"{prefix}_n": len(values),
        f"{prefix}_n_evals": distinct_counts(runs, HEADLINE_N),
        f"{prefix}_iqm": stats.iqm(values),
        f"{prefix}_iqm_ci_low": low,
        f"{prefix}_iqm_ci_high": high,
    }


def _sharpness(prefix: str, runs: pd.DataFrame, column: str, n_boot: int, seed: int) -> dict:
    values = pd.to_numeric(runs[column], errors="coerce").dropna().to_numpy(float)
    low, high = stats.stratified_bootstrap_ci(values, stats.iqm, n_boot=n_boot, seed=seed)
    return {prefix: stats.iqm(values), f"{prefix}_ci_low": low, f"{prefix}_ci_high": high}


def compute_corruption_table(
    tables: SweepTables, sweep_dir: Path, n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """One row per (condition, algorithm, dataset, SAM setting) with completed Adam or SAM
    runs (see the module docstring)."""
    done = _runs(tables, Path(sweep_dir))
    probes, radius = probe_columns(done)
    rows: list[dict[str, Any]] = []
    for condition in _order(done["condition"], CONDITION_ORDER):
        for algo in _order(done.loc[done["condition"] == condition, "algo.name"], ALGO_ORDER):
            here = done[(done["condition"] == condition) & (done["algo.name"] == algo)]
            for dataset in dict.fromkeys(here["dataset.name"]):
                runs = here[here["dataset.name"] == dataset]
                level = level_of(tables.baselines, algo, dataset)
                for setting in [s for s in dict.fromkeys(runs["sam"]) if s] or [""]:
                    row: dict[str, Any] = {
                        "condition": condition,
                        "algo.name": algo,
                        "dataset.name": dataset,
                        "sam": setting,
                        "clean_adam_level": None if level is None else level["verdict"],
                        "probe_rho": radius,
                        "test_fraction": comparison.split_text(runs),
                    }
                    adam = runs[runs["sam"] == ""]
                    sam = runs[runs["sam"] == setting] if setting else runs.iloc[:0]
                    row.update(_measured(adam, sam, probes, n_boot, seed))
                    row["adam_learns"] = _baseline_learns_here(level, row["adam_iqm"], dataset)
                    row["claim"] = row["adam_learns"] and not comparison.depends(row)
                    row.update(_against_paper(condition, algo, dataset, row.get("direction")))
                    rows.append(row)
    return pd.DataFrame(rows)


def _baseline_learns_here(level: Any, adam_iqm: float, dataset: str) -> bool:
    """A row makes a claim only where Adam learns on clean data (the level) *and* on this
    row's data, by the same bar (samrl.results.baselines). Under corruption an Adam at the
    floor leaves SAM's difference saying only whether SAM rescues it."""
    if level is None or level["verdict"] != LEARNS or np.isnan(adam_iqm):
        return False
    return reaches_bar(adam_iqm, str(dataset), level["behaviour_normalized"])


def _measured(
    adam: pd.DataFrame, sam: pd.DataFrame, probes: dict[str, str], n_boot: int, seed: int
) -> dict[str, Any]:
    """Scores and fixed-radius sharpness of both sides; SAM against Adam where both ran."""
    cells = {**_iqm_cells("adam", adam, n_boot, seed), **_iqm_cells("sam", sam, n_boot, seed)}
    for net, column in probes.items():
        for side, side_runs in (("adam", adam), ("sam", sam)):
            cells.update(
                _sharpness(side_sharpness_name(side, net), side_runs, column, n_boot, seed)
            )
    if len(adam) and len(sam):
        cells.update(comparison.versus_by_score(sam, adam, n_boot, seed))
    return cells


def _against_paper(condition: str, algo: str, dataset: str, ours: str | None) -> dict[str, Any]:
    """The paper's scores under `condition` (on `dataset`'s task where it reports that one),
    its direction, and whether ours agrees."""
    theirs_adam = paper_score(condition, algo, sam=False, dataset=dataset)
    theirs_sam = paper_score(condition, algo, sam=True, dataset=dataset)
    cells: dict[str, Any] = {
        "paper_adam": theirs_adam,
        "paper_sam": theirs_sam,
        "paper_tasks": paper_tasks(condition, dataset),
    }
    if theirs_adam is not None and theirs_sam is not None:
        cells["paper_diff"] = theirs_sam - theirs_adam
        cells["paper_direction"] = comparison.sign(cells["paper_diff"])
        if ours is not None:
            cells["agreement"] = comparison.agreement(ours, cells["paper_direction"])
    return cells


def _cell(row: pd.Series, key: str) -> Any:
    return row[key] if key in row.index else None


def _verdict_text(row: pd.Series) -> str:
    ours = _cell(row, "direction")
    if ours is None or pd.isna(ours):
        return ""
    return comparison.verdict_text(
        ours, _cell(row, "agreement"), bool(row["claim"]), comparison.depends(row)
    )


def _sharpness_text(row: pd.Series, net: str) -> str:
    adam = comparison.number_text(_cell(row, side_sharpness_name("adam", net)), 2)
    sam = comparison.number_text(_cell(row, side_sharpness_name("sam", net)), 2)
    return f"{adam} / {sam}" if adam or sam else ""


def display_rows(cells: pd.DataFrame) -> list[dict[str, str]]:
    """The table's cells as text, one row per (condition, algorithm, dataset, SAM setting)."""
    nets = list(dict.fromkeys(side_sharpness_networks(cells.columns)))
    rows = []
    for _, row in cells.iterrows():
        paper = (
            f"{row['paper_adam']:.1f} → {row['paper_sam']:.1f}"
            if pd.notna(_cell(row, "paper_adam"))
            else "not reported"
        )
        text = {
            "data": str(row["condition"]),
            "algorithm": algo_name(row["algo.name"]),
            "n (Adam / SAM)": f"{row['adam_n']} / {row['sam_n']}",
            "evals": str(_cell(row, "adam_n_evals") or ""),
            "held out": str(_cell(row, "test_fraction") or ""),
            "Adam IQM [95% CI]": comparison.interval_text(row, "adam_iqm"),
            "SAM IQM [95% CI]": comparison.interval_text(row, "sam_iqm"),
            "SAM − Adam [95% CI]": comparison.interval_text(row, "diff", signed=True)
            if pd.notna(_cell(row, "diff"))
            else "",
            "SAM − Adam final / headline / best": comparison.sensitivity_text(row),
            "P(SAM > Adam) [95% CI]": comparison.interval_text(row, "prob_improvement", digits=2)
            if pd.notna(_cell(row, "prob_improvement"))
            else "",
            "paper Adam → SAM": paper,
            "direction vs paper": _verdict_text(row),
        }
        for net in nets:
            text[f"{net} sharpness (Adam / SAM)"] = _sharpness_text(row, net)
        rows.append(text)
    return rows


def markdown(
    cells: pd.DataFrame, levels: pd.DataFrame, n_boot: int, borrowed: Sequence[str] = ()
) -> str:

    radii = cells["probe_rho"].dropna().unique() if "probe_rho" in cells else []
    probe = f"rho {radii[0]:g}" if len(radii) else "the fixed radius"
    lines = [
        "# Corrupted data: SAM vs Adam per data condition",
        "",
        f"Paper: {SOURCE}; its number per condition is the mean over its tasks (random "
        "observations: halfcheetah, walker2d, hopper; random mixed: halfcheetah; adversarial: "
        f"the average it gives). Here: the {HEADLINE_TEXT} (clean environment; "
        "`evals`: how many each run averaged), IQM over seeds with a stratified-bootstrap 95% "
        f"CI ({n_boot} resamples); SAM − Adam is the difference of IQMs, its CI a bootstrap "
        "over seeds (paired when both completed the same seeds); `final / headline / best` "
        "gives it under the "
        "last evaluation, the headline and the best evaluation, and a claim whose direction "
        "changes between them is marked *depends on the scored step* and makes no claim; "
        "`held out`: the fraction of the data kept out of training (dataset.test_fraction). "
        "The data differ, so only directions are "
        "compared: ours is a direction only when the CI of SAM − Adam excludes 0. Sharpness: "
        f"L(w + eps) − L(w) at {probe} (optim.probe), the mean of each run's last 10 "
        "measurements, IQM over runs.",
        "",
        "## Clean Adam baselines",
        "",
    ]
    for algo in dict.fromkeys(cells["algo.name"]):
        for dataset in dict.fromkeys(cells.loc[cells["algo.name"] == algo, "dataset.name"]):
            level = level_of(levels, algo, dataset)
            lines.append(f"- {algo_name(algo)} on clean {dataset}: {level_text(level)}.")
    lines += comparison.table_section(
        markdown_table(display_rows(cells)),
        "Against the paper, over the corrupted conditions it reports (a row makes a claim "
        "where Adam learns on clean data and on the row's own data)",
        cells,
    )
    if borrowed:
        lines += ["## Rows from other sweeps", "", *(f"- {line}" for line in borrowed), ""]
    return "\n".join(lines)


def write_corruption_table(
    cells: pd.DataFrame,
    levels: pd.DataFrame,
    out_dir: Path,
    n_boot: int,
    borrowed: Sequence[str] = (),
) -> list[Path]:
    """corruption_table.csv and .md in `out_dir`, each written atomically (`borrowed`: the
    lines of borrow_clean, listed in the .md)."""
    csv_path, md_path = (Path(out_dir) / name for name in CORRUPTION_TABLE_FILES)
    write_csv_atomic(cells, csv_path)
    atomic_write(md_path, markdown(cells, levels, n_boot, borrowed))
    return [csv_path, md_path]
