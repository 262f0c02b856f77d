"""report.md for a sweep: what ran, the aggregate table, the plots, how to read them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from samrl.config.sections import RUN_RECORD
from samrl.config.yamlio import flatten
from samrl.errors import RunError
from samrl.metrics import without_last10
from samrl.results import stats
from samrl.results.aggregate import (
    OPTIM_KEYS,
    TABLE_KEYS,
    SweepTables,
    compute_sweep_tables,
    format_number,
    score_column,
    write_sweep_tables,
)
from samrl.results.baselines import LEVEL_RULE, MIN_EVAL_EPISODES, level_rows
from samrl.results.headline import HEADLINE_N, HEADLINE_TEXT
from samrl.results.paper import markdown, markdown_table, score_tables
from samrl.results.plots import vs_rho_columns
from samrl.results.rank_correlation import correlation_rows, rank_correlations
from samrl.results.runs import get_path, read_config, read_status, read_sweep_spec, run_path
from samrl.results.sweep_figures import plot_sweep
from samrl.rundir import (
    AGGREGATE_FILE,
    BASELINES_FILE,
    RANK_CORRELATION_FILE,
    REPORT_FILE,
    SCORE_FILES,
    SUMMARY_FILE,
    atomic_write,
    write_csv_atomic,
)
from samrl.status import RunStatus

#: Config parts that describe the run rather than the experiment (or vary across the grid).
NOT_BASE_CONFIG = (RUN_RECORD, "sweep", "output", "train.seed")
VERSION_KEYS = ("version", "d3rlpy", "torch", "python", "device")
#: Figure file stem (prefix) -> section title; the rest of a stem names the metric and, in a
#: study split by dataset, the dataset.
PLOT_TITLES = {
    "score_vs_steps": "Score against training steps (mean over seeds, 95% bootstrap band)",
    "curves": "Against training steps (mean over seeds, 95% bootstrap band)",
    "final_vs_rho": "Headline score or sharpness per optimizer variant (IQM, 95% CI)",
    "sharpness_vs_score": "Sharpness against score, one point per run",
    "performance_profile": "Performance profiles: fraction of runs above each score",
    "prob_improvement": "Probability of improvement over the baseline (95% CI)",
}


def plot_title(path: Path) -> str:
    """ "Against training steps (...): critic_loss" for plots/curves_critic_loss.png."""
    stem = path.stem
    for prefix, title in PLOT_TITLES.items():
        if stem == prefix:
            return title
        if stem.startswith(prefix + "_"):
            return f"{title}: {stem.removeprefix(prefix + '_')}"
    return stem


HOW_TO_READ = """\
- **IQM** (interquartile mean): the mean of the middle half of the runs' scores
  (`scipy.stats.trim_mean(scores, 0.25)`, as in rliable; with n runs, `int(n/4)` runs are
  dropped at each end, so with fewer than 4 runs it is the plain mean). Less sensitive to one
  lucky or unlucky seed than the mean, more efficient than the median (Agarwal et al. 2021).
- **95% CI**: percentile bootstrap over seeds ({n_boot} resamples, stratified by task: runs
  are only resampled within their own grid point). Few seeds give wide intervals: two
  overlapping intervals do not show that two points are equal, nor do disjoint ones prove
  much with 3 seeds.
- **P(improvement)**: the probability that a run of this point scores higher than a run of
  its baseline (the rho=0 point with the same other settings, or Adam), ties counting one half,
  over all pairs of runs: the Mann-Whitney U statistic divided by n·m. 0.5 means no
  difference; its CI is a bootstrap over seeds, paired when both points completed the same
  seeds (a seed fixes the data order and the initial weights for every point).
- Only **completed** runs enter the statistics (`n`); diverged, failed and unfinished runs are
  counted in their own columns, so a setting that often diverges is not flattered by its
  survivors without you seeing it.
- **Sharpness** columns: the per-epoch mean of L(w+eps) − L(w) on the training minibatches,
  averaged over the last 10% of epochs (at least one), then aggregated like the scores.
"""


def write_report(sweep_dir: Path | str, n_boot: int = stats.DEFAULT_N_BOOT, seed: int = 0) -> Path:
    """Rebuild summary.csv, aggregate.csv and plots/, then write `<sweep_dir>/report.md`."""
    sweep_dir = Path(sweep_dir)
    tables = compute_sweep_tables(sweep_dir, n_boot=n_boot, seed=seed)
    write_sweep_tables(sweep_dir, tables)
    try:
        plots = plot_sweep(sweep_dir, tables=tables, seed=seed)
    except RunError:
        plots = []  # no run has written a CSV row yet: the report still lists what is planned
    correlations = rank_correlations(
        tables.summary,
        sweep_dir,
        score_column(tables.aggregate),
        n_boot=n_boot,
        seed=seed,
        cell_keys=[*tables.keys, *OPTIM_KEYS, *TABLE_KEYS],
    )
    write_csv_atomic(correlations, sweep_dir / RANK_CORRELATION_FILE)
    text = render_report(sweep_dir, tables, plots, n_boot=n_boot, correlations=correlations)
    out = sweep_dir / REPORT_FILE
    atomic_write(out, text)
    return out


def render_report(
    sweep_dir: Path,
    tables: SweepTables,
    plots: Sequence[Path],
    n_boot: int,
    correlations: pd.DataFrame | None = None,
) -> str:
    """The report's markdown text."""
    spec = read_sweep_spec(sweep_dir) or {}
    summary, aggregate = tables.summary, tables.aggregate
    name = spec.get("name") or sweep_dir.name
    first_config = _first_config(sweep_dir, summary)
    sections = [
        f"# Sweep `{name}`",
        "## What was run",
        _what_was_run(sweep_dir, spec, first_config, summary, tables.keys),
        "## Results",
        _results_intro(aggregate) + " " + _episodes_text(sweep_dir, summary),
        markdown_table(_result_rows(aggregate)),
        "## Adam baselines: do they learn?",
        LEVEL_RULE + f" Per algorithm and dataset (also `{BASELINES_FILE}`):",
        markdown_table(level_rows(tables.baselines))
        if len(tables.baselines)
        else "_No Adam runs in this sweep: no baseline level._",
        *_correlation_section(correlations, n_boot),
        "## Paper tables",
        "Headline, final and best score per algorithm, optimizer and dataset (final and best: "
        "the CORL / d3rlpy convention; "
        f"also as {', '.join(f'`{n}`' for n in SCORE_FILES)}, the LaTeX with booktabs).",
        markdown(score_tables(summary, tables.keys)),
        "## Plots",
        "" if plots else "_No plots yet: no run has written a CSV row._",
        *(f"### {plot_title(p)}\n\n![{p.stem}]({_relative(p, sweep_dir)})" for p in plots),
    ]
    problems = summary[summary["status"] != RunStatus.COMPLETED]
    if len(problems):
        sections += ["## Runs that did not complete", markdown_table(_problem_rows(problems))]
    sections += ["## How to read this", HOW_TO_READ.format(n_boot=n_boot)]
    return "\n\n".join(s.rstrip() for s in sections if s) + "\n"


# --------------------------------------------------------------------------- sections


def _correlation_section(correlations: pd.DataFrame | None, n_boot: int) -> list[str]:
    if correlations is None or correlations.empty:
        return []
    score = str(correlations["score"].iloc[0])
    return [
        "## Does sharpness rank runs as their scores do?",
        f"Spearman rank correlation over completed runs between each sharpness measure taken "
        f"without the environment and `{score}`, with a bootstrap 95% CI resampling runs "
        f"({n_boot} resamples, seeded), across runs and within treatment cells (runs ranked "
        "within their grid point, ranks centred per cell and pooled, CI resampling cells: the "
        "selection question; across runs the treatments' own effects drive the correlation); "
        f"also `{RANK_CORRELATION_FILE}`. The fixed-radius probe "
        "is its value at the last epoch that measured it; `posthoc_*_worst_case` is the "
        "worst-case sharpness of the last checkpoint. Negative: flatter runs score higher. "
        "The pooled row mixes algorithms and datasets; read the per-algorithm rows first.",
        markdown_table(correlation_rows(correlations)),
    ]


def _first_config(sweep_dir: Path, summary: pd.DataFrame) -> dict[str, Any]:
    for relative in summary["run_dir"]:
        config = read_config(run_path(sweep_dir, relative))
        if config:
            return config
    return {}


def _what_was_run(
    sweep_dir: Path,
    spec: Mapping[str, Any],
    config: Mapping[str, Any],
    summary: pd.DataFrame,
    keys: Sequence[str],
) -> str:
    lines = []
    base = spec.get("base_config")
    if isinstance(base, str):
        lines.append(f"Base config `{base}`; its resolved values (grid keys and seed excluded):")
    else:
        lines.append("Base config (resolved, grid keys and seed excluded):")
    lines.append("")
    flat = flatten(config)
    if "name" in flat:
        # A sweep's runs are all named "runs" (their folder); show the base config's own name.
        inline = base.get("name") if isinstance(base, Mapping) else None
        flat["name"] = inline or spec.get("name") or sweep_dir.name
    for path, value in flat.items():
        if not _is_under(path, [*NOT_BASE_CONFIG, *keys]):
            lines.append(f"- `{path}`: {value}")
    lines += ["", "Grid:", ""]
    grid = spec.get("grid") if isinstance(spec.get("grid"), dict) else None
    for key in keys:
        values = grid[key] if grid and key in grid else _unique(summary[key])
        lines.append(f"- `{key}`: {', '.join(str(v) for v in values)}")
    seeds = spec.get("seeds") or _unique(summary["seed"])
    lines += ["", f"Seeds: {', '.join(str(s) for s in seeds)}", ""]
    lines.append(f"Versions: {_versions(sweep_dir, summary)}")
    lines += ["", _run_counts(summary, _elapsed(sweep_dir, summary))]
    return "\n".join(lines)


def _is_under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def _unique(column: pd.Series) -> list[Any]:
    return list(dict.fromkeys(v for v in column if not pd.isna(v)))


def _versions(sweep_dir: Path, summary: pd.DataFrame) -> str:
    """Each version key with every distinct value among the runs (mixed versions show up)."""
    blocks = [read_config(run_path(sweep_dir, r)).get(RUN_RECORD) or {} for r in summary["run_dir"]]
    parts = []
    for key in VERSION_KEYS:
        values = list(dict.fromkeys(str(b[key]) for b in blocks if b.get(key) is not None))
        if values:
            label = "samrl" if key == "version" else key
            parts.append(f"{label} {' / '.join(values)}")
    return ", ".join(parts) or "unknown (no config.yaml samrl block)"


def _run_counts(summary: pd.DataFrame, elapsed: float | None = None) -> str:
    counts = summary["status"].value_counts()
    by_status = ", ".join(f"{n} {status}" for status, n in counts.items())
    wall = pd.to_numeric(summary["wall_time_s"], errors="coerce").dropna()
    text = f"Runs: {len(summary)} ({by_status})."
    if elapsed is not None:
        text += f" Sweep elapsed: {_duration(elapsed)} (first run start to last run end)."
    if len(wall):
        text += (
            f" Sum of run times: {_duration(wall.sum())}; per run mean "
            f"{_duration(wall.mean())}, min {_duration(wall.min())}, max {_duration(wall.max())}."
        )
    return text


def _elapsed(sweep_dir: Path, summary: pd.DataFrame) -> float | None:
    """Seconds from the earliest run start to the latest run end (status.json times)."""
    import datetime as dt

    starts, ends = [], []
    for relative in summary["run_dir"]:
        status = read_status(run_path(sweep_dir, relative))
        try:
            if status.get("started_at"):
                starts.append(dt.datetime.fromisoformat(status["started_at"]))
            if status.get("ended_at"):
                ends.append(dt.datetime.fromisoformat(status["ended_at"]))
        except (TypeError, ValueError):
            continue
    if not starts or not ends:
        return None
    return max(0.0, (max(ends) - min(starts)).total_seconds())


def _duration(seconds: float) -> str:
    seconds = round(float(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _results_intro(aggregate: pd.DataFrame) -> str:
    score = vs_rho_columns(aggregate)[0]
    return (
        f"Score: `{score}` ({HEADLINE_TEXT}; `{HEADLINE_N}` in `{SUMMARY_FILE}` says how "
        "many each run averaged). IQM [95% CI] over completed runs; "
        "P(improvement) is against the baseline named beside it. Full numbers: "
        f"`{AGGREGATE_FILE}` (one row per grid point) and `{SUMMARY_FILE}` (one row per run)."
    )


def _episodes_text(sweep_dir: Path, summary: pd.DataFrame) -> str:
    """How many episodes each run's evaluations averaged (train.eval_episodes)."""

    counts: dict[int, int] = {}
    for relative in summary["run_dir"]:
        episodes = get_path(read_config(run_path(sweep_dir, relative)), "train.eval_episodes")
        if isinstance(episodes, int):
            counts[episodes] = counts.get(episodes, 0) + 1
    if not counts:
        return "The number of evaluation episodes is not recorded (no config.yaml yet)."
    text = ", ".join(f"{e} episodes ({n} runs)" for e, n in sorted(counts.items()))
    few = min(counts) < MIN_EVAL_EPISODES
    return f"Each evaluation averages the returns of {text} (train.eval_episodes)" + (
        f"; fewer than {MIN_EVAL_EPISODES} episodes make a noisy score." if few else "."
    )


def _interval(row: Mapping[str, Any], column: str) -> str:
    return (
        f"{format_number(row[f'{column}_iqm'])} "
        f"[{format_number(row[f'{column}_ci_low'])}, {format_number(row[f'{column}_ci_high'])}]"
    )


def _result_rows(aggregate: pd.DataFrame) -> list[dict[str, str]]:
    score, *sharpness = vs_rho_columns(aggregate)
    rows = []
    for _, row in aggregate.iterrows():
        improvement = "–"
        if not pd.isna(row.get("prob_improvement")):
            improvement = (
                f"{row['prob_improvement']:.2f} [{row['prob_improvement_ci_low']:.2f}, "
                f"{row['prob_improvement_ci_high']:.2f}] vs {row['baseline']}"
            )
        cells = {
            "point": str(row["label"]),
            "n": str(row["n"]),
            f"{score} IQM [95% CI]": _interval(row, score),
            "mean ± std": f"{format_number(row[f'{score}_mean'])} ± "
            f"{format_number(row[f'{score}_std'])}",
            "P(improvement) [95% CI]": improvement,
        }
        for column in sharpness:
            cells[f"{without_last10(column)} IQM [95% CI]"] = _interval(row, column)
        cells["diverged / failed / unfinished"] = (
            f"{row['n_diverged']} / {row['n_failed']} / {row['n_unfinished']}"
        )
        rows.append(cells)
    return rows


def _problem_rows(problems: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for _, run in problems.iterrows():
        error = "" if pd.isna(run["error"]) else str(run["error"]).strip().splitlines()[0][:160]
        steps = "" if pd.isna(run["steps_done"]) else str(int(run["steps_done"]))
        rows.append(
            {
                "run": f"`{run['run_id']}`",
                "status": str(run["status"]),
                "steps done": steps,
                "error": error,
            }
        )
    return rows


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()
