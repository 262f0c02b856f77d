"""`samrl train` and `samrl algos`: one run of a config, and the algorithms it may name."""

from __future__ import annotations

import shlex
import signal
import sys
from typing import TYPE_CHECKING

import click

from samrl.config import load_config
from samrl.config.options import QUIET, config_file, overrides
from samrl.rundir import TABLE_FILES, RunDir
from samrl.status import RunStatus

if TYPE_CHECKING:
    from samrl.run.train import RunResult


@click.command("train")
@config_file("YAML experiment config.")
@overrides("Override a config key (YAML-typed value); repeatable.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and run directory.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run from its checkpoint (a run that never started is "
    "started, and the command says so).",
)
@click.option("--overwrite", is_flag=True, help="Delete an existing run directory first.")
@QUIET
def train(
    config_path: str,
    overrides: tuple[str, ...],
    dry_run: bool,
    resume: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Train one config; writes loss.csv, sharpness.csv, eval.csv per epoch.

    \b
    Example:
      samrl train --config configs/cql_sam.yaml --set optim.rho=0.1 --set train.seed=1
    """
    config = load_config(config_path, overrides)
    if dry_run:
        click.echo(config.to_yaml().rstrip())
        click.echo(f"# run directory: {config.run_dir}")
        return
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    from samrl.run.train import run_training

    if resume and not RunDir(config.run_dir).is_run():
        click.echo(
            f"samrl: nothing to resume: no run in {config.run_dir}; starting it from scratch",
            err=True,
        )
    result = run_training(config, resume=resume, overwrite=overwrite, progress=not quiet)
    again = ["samrl", "train", "--config", config_path]
    _report(result, [*again, *(f"--set={text}" for text in overrides), "--resume"])


def _report(result: RunResult, resume_command: list[str]) -> None:
    """The run's last line; an interrupted run names the command that resumes it and exits
    128 + the signal's number, a failed one exits 1."""
    if result.status == RunStatus.SKIPPED:
        click.echo(f"samrl: {result.message}; nothing to do")
        return
    if result.status == RunStatus.COMPLETED:
        tables = [n for n in TABLE_FILES if (result.run_dir / n).exists()]
        click.echo(
            f"samrl: run completed ({result.steps_done} steps); {', '.join(tables)} "
            f"in {result.run_dir}"
        )
        return
    if result.status == RunStatus.INTERRUPTED:
        click.echo(f"samrl: {result.message}; resume with: {shlex.join(resume_command)}", err=True)
        sys.exit(128 + int(getattr(signal, result.signal, signal.SIGINT)))
    click.echo(
        f"samrl: run {result.status}: {result.message}; what was written is in {result.run_dir}",
        err=True,
    )
    sys.exit(1)


@click.command("algos")
def algos_cmd() -> None:
    """List algorithms and the networks SAM can be applied to.

    \b
    Example:
      samrl algos
    """
    from samrl.algos import algorithm_table

    for name, facts in sorted(algorithm_table().items()):
        kind = "discrete" if facts.discrete else "continuous"
        scalars = f"  (base optimizer only: {', '.join(facts.scalars)})" if facts.scalars else ""
        click.echo(f"{name:32s} {kind:10s} networks: {', '.join(facts.networks)}{scalars}")
