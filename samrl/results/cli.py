"""`samrl summarize`: rebuild summary.csv and aggregate.csv of a sweep directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd

from samrl.results import stats
from samrl.results.aggregate import (
    compute_sweep_tables,
    format_number,
    score_column,
    write_sweep_tables,
)
from samrl.results.baselines import level_text
from samrl.results.comparison import tally_text
from samrl.results.seed_table import borrow_rows, compute_seed_table, write_seed_table
from samrl.rundir import SweepDir

SEED_TABLE_PLOT = "seed_table.png"
CORRUPTION_TABLE_PLOT = "corruption_table.png"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _status_counts(summary: pd.DataFrame) -> str:
    counts = summary["status"].value_counts()
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def also_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--also DIR (repeatable): other sweeps a table borrows runs from; what it borrows is the
    command's own rule, said in `help_text`."""
    return click.option(
        "--also",
        "also",
        multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=help_text,
    )


def bootstrap_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--n-boot and --seed, shared by the commands that compute confidence intervals."""
    command = click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap.")(
        command
    )
    return click.option(
        "--n-boot",
        default=stats.DEFAULT_N_BOOT,
        show_default=True,
        type=click.IntRange(min=1),
        help="Bootstrap resamples for the confidence intervals.",
    )(command)


@click.command(
    "summarize",
    epilog="Example: samrl summarize runs/cql_rho_sweep --n-boot 5000",
)
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@bootstrap_options
def summarize_cmd(sweep_dir: Path, n_boot: int, seed: int) -> None:
    """Write summary.csv (one row per run), aggregate.csv (one row per grid point) and
    baselines.csv (the Adam baseline level per algorithm and dataset).

    SWEEP_DIR is a sweep directory (with sweep.json) or any directory holding run directories
    one or two levels below it. Unfinished runs are listed with their status; statistics use
    completed runs (IQM with a stratified bootstrap 95% CI, probability of improvement over
    the rho=0 or Adam point).
    """
    tables = compute_sweep_tables(sweep_dir, n_boot=n_boot, seed=seed)
    write_sweep_tables(sweep_dir, tables)
    summary, aggregate = tables.summary, tables.aggregate
    score = score_column(aggregate)
    for _, row in aggregate.iterrows():
        improvement = row.get("prob_improvement")
        improvement_text = (
            "" if pd.isna(improvement) else f"  P(>{row['baseline']})={improvement:.2f}"
        )
        click.echo(
            f"  {row['label']:<24} n={row['n']:<3} {score} IQM "
            f"{format_number(row[f'{score}_iqm'])} "
            f"[{format_number(row[f'{score}_ci_low'])}, {format_number(row[f'{score}_ci_high'])}]"
            f"{improvement_text}"
        )
    for _, level in tables.baselines.iterrows():
        click.echo(
            f"  Adam baseline {level['algo.name']} on {level['dataset.name']}: "
            f"{level_text(level.to_dict())}; {level['reason']}"
        )
    runs = f"{plural(len(summary), 'run')}: {_status_counts(summary)}"
    points = plural(len(aggregate), "grid point")
    click.echo(
        f"wrote {SweepDir(sweep_dir).summary_file} ({runs}) and "
        f"{SweepDir(sweep_dir).aggregate_file} ({points})"
    )


@click.command(
    "seed-table",
    epilog="""\b
Example:
  samrl sweep configs/sweeps/seed_table.yaml       # runs into results/seed-table
  samrl seed-table results/seed-table --also results/study --n-boot 5000
  # -> results/seed-table/seed_table.{md,csv,tex} and plots/seed_table.png (+ .pdf);
  #    IQL and CQL rows from the study's Adam and rho-0.05 runs""",
)
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@also_option(
    "Another sweep whose Adam and rho-0.05 runs fill the rows (algorithm, dataset) that "
    "SWEEP_DIR lacks (repeatable; the table says which rows came from where)."
)
@bootstrap_options
def seed_table_cmd(sweep_dir: Path, also: tuple[Path, ...], n_boot: int, seed: int) -> None:
    """The seed experiment redone with seeds: per algorithm and optimizer choice
    (actor/critic[/imitator]: Adam or SAM), the final normalized score's IQM [95% CI], its
    difference from the row's all-Adam [95% CI], P(improvement) over all-Adam, the seed
    notebook's one-seed return beside it, and whether the directions agree. Each row is marked
    with its Adam baseline level; a row whose baseline does not learn makes no claim.

    SWEEP_DIR is a sweep directory (with sweep.json) or a directory holding run directories.
    Writes SWEEP_DIR/seed_table.{md,csv,tex}, plots/seed_table.png (+ .pdf), and rebuilds
    summary.csv, aggregate.csv and baselines.csv.
    """
    from samrl.results.plots import save
    from samrl.results.seed_table_plot import build_seed_table_figure

    tables = compute_sweep_tables(sweep_dir, n_boot=n_boot, seed=seed)
    others = [(str(d), compute_sweep_tables(d, n_boot=n_boot, seed=seed)) for d in also]
    combined, borrowed = borrow_rows(tables, others)
    cells = compute_seed_table(combined, n_boot=n_boot, seed=seed)
    write_sweep_tables(sweep_dir, tables)
    written = write_seed_table(cells, combined.baselines, sweep_dir, n_boot, borrowed)
    figure = save(build_seed_table_figure(cells), sweep_dir / "plots" / SEED_TABLE_PLOT)
    rows = cells.drop_duplicates(["algo.name", "dataset.name"])
    click.echo(
        f"wrote {', '.join(str(p) for p in written)} and {figure} (+ .pdf): "
        f"{plural(len(rows), 'algorithm row')}, {plural(len(cells), 'cell')}; "
        f"{int(rows['claim'].sum())} rows with a learning baseline; against the seed: "
        f"{tally_text(cells, 'cell')}"
    )


@click.command(
    "corruption-table",
    epilog="""\b
Example:
  samrl sweep configs/sweeps/corruption.yaml       # runs into results/corruption
  samrl corruption-table results/corruption --n-boot 5000
  # -> results/corruption/corruption_table.{md,csv} and plots/corruption_table.png (+ .pdf)
  samrl corruption-table results/mujoco-corruption --also results/mujoco
  #    the clean IQL cells from the MuJoCo study's runs""",
)
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@also_option(
    "Another sweep whose clean-data runs fill the clean cells SWEEP_DIR lacks, for its "
    "algorithms, datasets and SAM settings, when trained the same way (repeatable; the table "
    "says which cells came from where)."
)
@bootstrap_options
def corruption_table_cmd(sweep_dir: Path, also: tuple[Path, ...], n_boot: int, seed: int) -> None:
    """SAM vs Adam on clean and corrupted data, beside the one published claim (arXiv
    2511.17568): per data condition and algorithm, the final normalized score's IQM [95% CI]
    for Adam and SAM, SAM − Adam [95% CI], P(SAM > Adam) [95% CI], the paper's scores and
    whether the directions agree, and the sharpness at the fixed radius (optim.probe) of each
    network, clean against corrupted. Rows are marked with the clean Adam baseline's level.

    SWEEP_DIR is a sweep directory (with sweep.json) or a directory holding run directories.
    Writes SWEEP_DIR/corruption_table.{md,csv}, plots/corruption_table.png (+ .pdf), and
    rebuilds summary.csv, aggregate.csv and baselines.csv.
    """
    from samrl.results.corruption_plot import build_corruption_figure
    from samrl.results.corruption_table import (
        borrow_clean,
        compute_corruption_table,
        write_corruption_table,
    )
    from samrl.results.plots import save

    tables = compute_sweep_tables(sweep_dir, n_boot=n_boot, seed=seed)
    others = [(d, compute_sweep_tables(d, n_boot=n_boot, seed=seed)) for d in also]
    combined, borrowed = borrow_clean(tables, sweep_dir, others)
    cells = compute_corruption_table(combined, sweep_dir, n_boot=n_boot, seed=seed)
    write_sweep_tables(sweep_dir, tables)
    written = write_corruption_table(cells, combined.baselines, sweep_dir, n_boot, borrowed)
    figure = save(build_corruption_figure(cells), sweep_dir / "plots" / CORRUPTION_TABLE_PLOT)
    click.echo(
        f"wrote {', '.join(str(p) for p in written)} and {figure} (+ .pdf): "
        f"{plural(len(cells), 'row')}; against the paper: {tally_text(cells)}"
    )
