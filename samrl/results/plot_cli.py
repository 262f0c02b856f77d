"""`samrl plot` (curves of a run or a sweep) and `samrl report` (report.md of a sweep)."""

from __future__ import annotations

from pathlib import Path

import click

from samrl.errors import RunError, SamrlError
from samrl.results.cli import bootstrap_options
from samrl.results.plots import is_sweep_dir, plot_run
from samrl.results.report import write_report
from samrl.results.runs import is_run_dir
from samrl.results.sweep_figures import plot_sweep


def _existing_dir(path: Path) -> Path:
    if not path.exists():
        raise SamrlError(f"{path}: no such directory")
    if not path.is_dir():
        raise SamrlError(f"{path}: not a directory (give a run or sweep directory)")
    return path


@click.command(
    "plot",
    epilog="""\b
Examples:
  samrl plot runs/cql_sam/cql_pendulum-medium_sam-rho0.05_s0 --metric critic_sharpness
  samrl plot runs/rho_sweep --out figures/rho_sweep""",
)
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="Column of loss.csv, sharpness.csv or eval.csv to plot (repeatable). "
    "Default: loss terms, <net>_sharpness, return_mean, normalized_score.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="For a run: the PNG file (default <run>/plots/curves.png). "
    "For a sweep: the folder for its PNGs (default <sweep>/plots).",
)
def plot_cmd(path: Path, metrics: tuple[str, ...], out: Path | None) -> None:
    """Plot a run's curves, or a sweep's curves (mean over seeds per grid point), final score
    and sharpness against rho, and sharpness against score.

    PATH is a run directory (with status.json) or a sweep directory (with sweep.json, or with
    run directories below it).
    """
    path = _existing_dir(path)
    if is_sweep_dir(path):
        if out is not None and out.suffix.lower() == ".png":
            raise SamrlError(f"--out {out}: a sweep makes several plots; give a folder")
        written = plot_sweep(path, metrics or None, out)
        click.echo(
            f"wrote {len(written)} plots to {written[0].parent}: "
            f"{', '.join(p.name for p in written)}"
        )
    elif is_run_dir(path):
        if out is not None and out.suffix.lower() != ".png":
            raise SamrlError(f"--out {out}: give a .png file name for a run's plot")
        click.echo(f"wrote {plot_run(path, metrics or None, out)}")
    else:
        raise RunError(
            f"{path}: not a run directory (no status.json or config.yaml) nor a sweep "
            "directory (no sweep.json, no run directories below it)"
        )


@click.command(
    "report",
    epilog="""\b
Example:
  samrl report runs/rho_sweep      # then open runs/rho_sweep/report.md""",
)
@click.argument("sweep_dir", type=click.Path(path_type=Path))
@bootstrap_options
def report_cmd(sweep_dir: Path, n_boot: int, seed: int) -> None:
    """Write SWEEP_DIR/report.md: what ran, the aggregate table (IQM with 95% CI, mean ± std,
    probability of improvement over rho=0 or Adam), the plots, and how to read them.
    Also rebuilds summary.csv, aggregate.csv and plots/. Works on unfinished sweeps.
    """
    sweep_dir = _existing_dir(sweep_dir)
    report = write_report(sweep_dir, n_boot=n_boot, seed=seed)
    click.echo(f"wrote {report} (with summary.csv, aggregate.csv and plots/ beside it)")
