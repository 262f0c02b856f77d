"""The seed table: the seed experiment (samrl.results.seed_reference) redone with seeds and
confidence intervals, from a sweep of algorithms x optimizer choices.

An optimizer choice says, per network in the order actor/critic[/imitator], whether SAM or Adam
steps it: "SAM/Adam" is SAM on the actor, Adam on the critic; an `optim.name: adam` run is
all-Adam whatever its `optim.networks`. Per (algorithm, dataset, choice), over completed runs:

- n and the headline normalized score's IQM (samrl.results.headline) with its
  stratified-bootstrap 95% CI, and how many evaluations each run's headline averaged;
- the difference of IQMs from the row's all-Adam choice, with a bootstrap 95% CI, and the same
  difference under the final and the best evaluation (samrl.results.comparison: a claim whose
  direction changes between them "depends on the scored step" and makes no claim);
- P(improvement) over all-Adam with its CI (samrl.results.stats);
  both bootstraps pair seeds when the two choices completed the same seeds (a seed fixes the
  data order and the initial weights), else resample each side independently (`paired`);
- the seed's one-seed return and its difference from the seed's all-Adam;
- the direction: ours is "higher" / "lower" only when the CI of the difference excludes 0,
  else "none"; the seed's is the sign of its difference. `agreement` is agrees / disagrees /
  indistinguishable (ours "none"), blank where the seed reported nothing, "not run" for a
  choice the seed reported that has no completed run (a row with n = 0);
- the row's Adam level (samrl.results.baselines): in a row whose baseline does not learn,
  `claim` is False and the SAM differences count as no claim; so is it in a cell whose
  direction depends on the scored step.

The seed used d3rlpy's own pendulum replay data and returns; samrl uses its built-in data and
normalized scores, so only directions are compared, never values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from samrl.errors import RunError
from samrl.results import stats
from samrl.results.aggregate import SweepTables
from samrl.results.baselines import (
    LEARNS,
    LEVEL_RULE,
    NOT_LEARNING,
    distinct_counts,
    level_of,
    level_rows,
    level_text,
)
from samrl.results.comparison import (
    agreement,
    depends,
    interval_text,
    number_text,
    scores_by_seed,
    sensitivity_text,
    sign,
    split_text,
    table_section,
    verdict_text,
    versus_by_score,
)
from samrl.results.headline import HEADLINE, HEADLINE_N, HEADLINE_TEXT
from samrl.results.labels import sam_networks
from samrl.results.paper import algo_name, latex_escape, markdown_table
from samrl.results.seed_reference import (
    NETWORK_ORDER,
    RHO,
    SEED_RETURNS,
    SOURCE,
    seed_reported,
    seed_return,
)
from samrl.rundir import SEED_TABLE_FILES, atomic_write, write_csv_atomic
from samrl.sam.variants import is_base
from samrl.status import RunStatus

SCORE = HEADLINE
NOT_RUN = "not run"  # a choice the seed reported that the sweep has no completed run of
COLUMNS = (
    "algo.name",
    "dataset.name",
    "choice",
    "sam_networks",
    "n",
    "n_evals",
    "iqm",
    "ci_low",
    "ci_high",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "diff_final",
    "diff_final_ci_low",
    "diff_final_ci_high",
    "diff_best",
    "diff_best_ci_low",
    "diff_best_ci_high",
    "direction_final",
    "direction_best",
    "sensitivity",
    "prob_improvement",
    "prob_improvement_ci_low",
    "prob_improvement_ci_high",
    "paired",
    "held_out",
    "seed_return",
    "seed_diff",
    "direction",
    "seed_direction",
    "agreement",
    "adam_level",
    "adam_learns",
    "claim",
)


def networks_text(sam: frozenset[str] | set[str]) -> str:
    """The `sam_networks` column: the networks SAM steps, in NETWORK_ORDER, joined by "+"
    ("" for all-Adam)."""
    return "+".join(n for n in NETWORK_ORDER if n in sam)


@cache
def choice_networks(algo: str) -> tuple[str, ...]:
    """The networks an optimizer choice of `algo` names, in NETWORK_ORDER (actor, critic and,
    in BCQ and BEAR, the imitator)."""
    from samrl.algos import algorithm_table

    facts = algorithm_table().get(algo)
    present = set(facts.networks) if facts is not None else {"actor", "critic"}
    return tuple(n for n in NETWORK_ORDER if n in present)


def choice_label(algo: str, sam: frozenset[str]) -> str:
    """ "SAM/Adam" (SAM on the actor) for actor/critic; "Adam/Adam/SAM" for BCQ's imitator."""
    return "/".join("SAM" if n in sam else "Adam" for n in choice_networks(algo))


def choice_order(algo: str) -> list[str]:
    """All-Adam first, then SAM on one network (in NETWORK_ORDER from the last), two, ..."""
    nets = choice_networks(algo)
    subsets = [
        frozenset(n for i, n in enumerate(nets) if mask >> i & 1) for mask in range(2 ** len(nets))
    ]
    subsets.sort(key=lambda s: (len(s), [-nets.index(n) for n in sorted(s, key=nets.index)]))
    return [choice_label(algo, s) for s in subsets]


def borrow_rows(
    tables: SweepTables, others: Sequence[tuple[str, SweepTables]]
) -> tuple[SweepTables, list[str]]:
    """`tables` plus, from each (name, tables) of another sweep, the runs of every (algorithm,
    dataset) that `tables` lacks, Adam and SAM at the seed's rho only, with their Adam levels;
    and one line per borrowed row saying where it came from.

    The shipped seed table takes IQL and CQL from the study this way: the study's rho-0.05 runs
    are the seed table's configs (tests/test_sweep_grid.py), so training them twice would only
    cost time. The first sweep to have a row wins."""
    summary, levels = tables.summary, tables.baselines
    notes = []
    for name, other in others:
        have = set(zip(summary["algo.name"], summary["dataset.name"], strict=True))
        rows = other.summary
        rhos = pd.to_numeric(rows["optim.rho"], errors="coerce")
        names = rows["optim.name"]
        at_rho = [is_base(o) or math.isclose(r, RHO) for o, r in zip(names, rhos, strict=True)]
        new = [key not in have for key in zip(rows["algo.name"], rows["dataset.name"], strict=True)]
        taken = rows[pd.Series(at_rho, index=rows.index) & pd.Series(new, index=rows.index)]
        if taken.empty:
            continue
        for (algo, dataset), runs in taken.groupby(["algo.name", "dataset.name"], sort=False):
            notes.append(f"{algo_name(algo)} on {dataset}: {len(runs)} runs from {name}")
            if len(other.baselines):
                own = other.baselines[
                    (other.baselines["algo.name"] == algo)
                    & (other.baselines["dataset.name"] == dataset)
                ]
                levels = pd.concat([levels, own], ignore_index=True)
        summary = pd.concat([summary, taken], ignore_index=True)
    return replace(tables, summary=summary, baselines=levels), notes


def compute_seed_table(
    tables: SweepTables, n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """One row per (algorithm, dataset, optimizer choice) with completed runs (COLUMNS)."""
    summary = tables.summary
    done = summary[(summary["status"] == RunStatus.COMPLETED)].copy()
    done[SCORE] = pd.to_numeric(done[SCORE], errors="coerce")
    done = done[done[SCORE].notna()]
    if done.empty:
        raise RunError("no completed run with a headline normalized score: no seed table yet")
    networks = done["optim.networks"] if "optim.networks" in done else pd.Series(None, done.index)
    rhos = pd.to_numeric(done["optim.rho"], errors="coerce")
    done["sam"] = [sam_networks(o, n) for o, n in zip(done["optim.name"], networks, strict=True)]
    done["choice"] = [
        choice_label(a, s) + ("" if not s or math.isclose(r, RHO) else f" rho={r:g}")
        for a, s, r in zip(done["algo.name"], done["sam"], rhos, strict=True)
    ]
    known = list(SEED_RETURNS)
    algos = sorted(
        done["algo.name"].unique(),
        key=lambda a: (a not in known, known.index(a) if a in known else 0, a),
    )
    rows = []
    for algo in algos:
        for dataset in dict.fromkeys(done.loc[done["algo.name"] == algo, "dataset.name"]):
            runs = done[(done["algo.name"] == algo) & (done["dataset.name"] == dataset)]
            rows += _row_cells(algo, dataset, runs, tables.baselines, n_boot, seed)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _row_cells(
    algo: str,
    dataset: str,
    runs: pd.DataFrame,
    levels: pd.DataFrame,
    n_boot: int,
    seed: int,
) -> list[dict[str, Any]]:
    order = choice_order(algo)
    all_adam = order[0]
    present = list(dict.fromkeys(runs["choice"]))
    # a choice the seed reported but the sweep did not run is a row too: "not run"
    reported = set(seed_reported(algo, dataset))
    choices = [c for c in order if c in present or c in reported]
    choices += [c for c in present if c not in order]
    level = level_of(levels, algo, dataset)
    verdict = None if level is None else level["verdict"]
    adam = runs[runs["choice"] == all_adam]
    seed_adam = seed_return(algo, all_adam, dataset)
    cells = []
    for choice in choices:
        if choice not in present:
            cells.append(_not_run(algo, dataset, choice, verdict))
            continue
        mine = runs[runs["choice"] == choice]
        values = scores_by_seed(mine).to_numpy(float)
        low, high = stats.stratified_bootstrap_ci(values, stats.iqm, n_boot=n_boot, seed=seed)
        cell: dict[str, Any] = {
            "algo.name": algo,
            "dataset.name": dataset,
            "choice": choice,
            "sam_networks": networks_text(runs.loc[runs["choice"] == choice, "sam"].iloc[0]),
            "n": len(values),
            "n_evals": distinct_counts(mine, HEADLINE_N),
            "held_out": split_text(mine),
            "iqm": stats.iqm(values),
            "ci_low": low,
            "ci_high": high,
            "adam_level": verdict,
            "adam_learns": verdict == LEARNS,
            "claim": verdict == LEARNS,
        }
        theirs = seed_return(algo, choice, dataset)
        cell["seed_return"] = theirs
        if choice != all_adam and len(adam):
            cell.update(versus_by_score(mine, adam, n_boot, seed))
            cell["claim"] = cell["claim"] and not depends(cell)
            seed_diff = None if theirs is None or seed_adam is None else theirs - seed_adam
            cell["seed_diff"] = seed_diff
            cell["seed_direction"] = sign(seed_diff)
            cell["agreement"] = agreement(cell["direction"], cell["seed_direction"])
        cells.append(cell)
    return cells


def _not_run(algo: str, dataset: str, choice: str, verdict: str | None) -> dict[str, Any]:
    theirs = seed_return(algo, choice, dataset)
    seed_adam = seed_return(algo, choice_order(algo)[0], dataset)
    sam = {n for n, c in zip(choice_networks(algo), choice.split("/"), strict=True) if c == "SAM"}
    return {
        "algo.name": algo,
        "dataset.name": dataset,
        "choice": choice,
        "sam_networks": networks_text(sam),
        "n": 0,
        "seed_return": theirs,
        "seed_diff": None if theirs is None or seed_adam is None else theirs - seed_adam,
        "agreement": NOT_RUN,
        "adam_level": verdict,
        "claim": False,
    }


# --------------------------------------------------------------------------- text


def _direction_text(row: pd.Series) -> str:
    if row.get("agreement") == NOT_RUN:
        return NOT_RUN
    if pd.isna(row.get("direction")):
        return ""
    return verdict_text(row["direction"], row["agreement"], bool(row["claim"]), depends(row))


def display_rows(cells: pd.DataFrame) -> list[dict[str, str]]:
    """The table's cells as text, one row per (algorithm, dataset, choice)."""
    rows = []
    first = ~cells.duplicated(["algo.name", "dataset.name"])
    for is_first, (_, row) in zip(first, cells.iterrows(), strict=True):
        rows.append(
            {
                "algorithm": algo_name(row["algo.name"]) if is_first else "",
                "dataset": str(row["dataset.name"]) if is_first else "",
                "Adam level": (str(row["adam_level"] or "no Adam runs") if is_first else ""),
                "choice": str(row["choice"]),
                "n": str(row["n"]),
                "evals": str(row.get("n_evals") or ""),
                "held out": str(row.get("held_out") or ""),
                "headline IQM [95% CI]": interval_text(row, ""),
                "Δ vs all-Adam [95% CI]": interval_text(row, "diff", signed=True),
                "Δ final / headline / best": sensitivity_text(row),
                "P(improvement) [95% CI]": interval_text(row, "prob_improvement", digits=2),
                "seed return": number_text(row["seed_return"], 0),
                "seed Δ": number_text(row.get("seed_diff"), 0, signed=True),
                "direction vs seed": _direction_text(row),
            }
        )
    return rows


def markdown(
    cells: pd.DataFrame, levels: pd.DataFrame, n_boot: int, borrowed: Sequence[str] = ()
) -> str:
    lines = [
        "# Seed table: SAM vs Adam per network, with seeds and confidence intervals",
        "",
        f"Seed numbers: {SOURCE}. Here: the {HEADLINE_TEXT} (`evals`: how many each run "
        f"averaged), IQM over seeds with a stratified-bootstrap 95% CI ({n_boot} resamples); Δ "
        "is the IQM minus the row's all-Adam IQM, its CI a bootstrap over seeds (paired when "
        "both completed the same seeds). `Δ final / headline / best`: the same Δ under the last "
        "evaluation, the headline and the best evaluation; a Δ whose CI excludes 0 under the "
        "headline but whose direction changes under another is marked *depends on the scored "
        "step* and makes no claim. `held out`: the share of the data kept out of training "
        "(dataset.test_fraction; rows may come from several sweeps). Choices are written "
        "actor/critic (BCQ, BEAR: "
        "actor/critic/imitator). "
        "The data differ (samrl's built-in pendulum replay vs d3rlpy's download), so only "
        "directions are compared: ours is a direction only when the CI of Δ excludes 0; the "
        "seed's is the sign of its cell minus its all-Adam cell. Blank seed cells: the seed did "
        "not report them.",
        "",
        *(
            ["## Rows from other sweeps", "", *(f"- {line}" for line in borrowed), ""]
            if borrowed
            else []
        ),
        "## Adam levels",
        "",
        LEVEL_RULE,
        "",
        markdown_table(level_rows(levels)) if len(levels) else "_No Adam runs._",
        "",
        "## Rows",
        "",
    ]
    for (algo, dataset), row in cells.groupby(["algo.name", "dataset.name"], sort=False):
        level = level_of(levels, algo, dataset)
        if row["claim"].iloc[0]:
            verdict = "the SAM differences below are claims"
        elif level is not None and level["verdict"] == NOT_LEARNING:
            verdict = "the baseline does not learn: its SAM differences are no claim"
        else:
            verdict = "the baseline's level is unknown: its SAM differences are no claim"
        lines.append(f"- {algo_name(algo)} on {dataset}: {level_text(level)}; {verdict}.")
    lines += table_section(
        markdown_table(display_rows(cells)),
        "Against the seed, over the cells it reports (a row makes a claim where its all-Adam "
        "baseline learns)",
        cells,
        "cell",
    )
    return "\n".join(lines)


def latex(cells: pd.DataFrame) -> str:
    """One booktabs table (needs \\usepackage{booktabs})."""
    rows = display_rows(cells)
    header = list(rows[0]) if rows else []
    out = [
        "% samrl seed table; needs \\usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{SAM vs Adam per network: headline normalized score (mean of the evaluations "
        r"in the last 20\% of training, at least 3), IQM [95\% CI] over seeds; "
        r"seed: one-seed return of the d3rlpy 1.x notebook}",
        r"\label{tab:samrl-seed-table}",
        r"\begin{tabular}{" + "l" * 4 + "r" * (len(header) - 5) + "l}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    for row in rows:
        out.append(" & ".join(latex_escape(v) for v in row.values()) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def headline_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells the headline figure shows: every non-all-Adam choice with a difference."""
    return cells[cells["diff"].notna()]


def write_seed_table(
    cells: pd.DataFrame,
    levels: pd.DataFrame,
    out_dir: Path,
    n_boot: int,
    borrowed: Sequence[str] = (),
) -> list[Path]:
    """seed_table.csv, .md and .tex in `out_dir`, each written atomically."""
    csv_path, md_path, tex_path = (Path(out_dir) / name for name in SEED_TABLE_FILES)
    write_csv_atomic(cells, csv_path)
    atomic_write(md_path, markdown(cells, levels, n_boot, borrowed))
    atomic_write(tex_path, latex(cells))
    return [csv_path, md_path, tex_path]
