"""`samrl sweep`: a grid of configs x seeds, run locally, on Slurm or on Ray, resumable."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import click

from samrl.config import parse_override
from samrl.config.launchers import LAUNCHERS, launcher_flags, parse_launcher
from samrl.config.options import QUIET, SweepArgs, config_file, overrides, with_options
from samrl.errors import ConfigError
from samrl.quiet import quiet_d3rlpy
from samrl.sweep.grid import (
    SweepSpec,
    check_grid,
    check_name,
    load_sweep_file,
    parse_grid_flag,
    parse_only_flags,
    parse_seeds,
    spec_from_config,
)
from samrl.sweep.pilot import check_pilot_seeds
from samrl.sweep.runner import SweepOptions, exit_code, final_line, print_failures, run_sweep

#: Flag -> (its launcher section, the field, the flag): declared on the sections.
LAUNCHER_FLAGS = launcher_flags()


def _launcher_options(command: Any) -> Any:
    """The launcher sections' flags (`--partition`, `--num-cpus`, ...) as click options."""
    for name, (_, _, flag) in reversed(LAUNCHER_FLAGS.items()):
        if flag.integer is None:
            kind: Any = None
        elif flag.integer:
            kind = click.IntRange(min=flag.low)
        else:
            kind = click.FloatRange(min=flag.low)
        command = click.option("--" + name.replace("_", "-"), name, type=kind, help=flag.help)(
            command
        )
    return command


EPILOG = """\b
Examples:
  samrl sweep --config configs/demo.yaml --rho 0,0.01,0.05,0.1 --seeds 0-4 --jobs 2
  samrl sweep configs/sweeps/smoke.yaml --jobs 2
  samrl sweep configs/sweeps/smoke.yaml --dry-run
  samrl sweep configs/sweeps/mujoco_study.yaml --only optim.name=adam   # the baselines first
  samrl sweep configs/sweeps/mujoco.yaml --launcher slurm --partition gpu --gpus-per-node 1
  samrl sweep configs/sweeps/pendulum.yaml --launcher ray --address auto --num-cpus 2

\b
Sweep file (YAML):
  name: cql_rho
  base: ../demo.yaml            # a config file, relative to this file (or inline config: {...})
  grid: {optim.rho: [0, 0.05, 0.1], algo.name: [cql, iql]}
  seeds: 0-4                    # or [0, 1, 2]
  set: {train.n_steps: 5000}    # overrides applied to every run
  jobs: 2
  launcher: {type: slurm, partition: gpu, timeout_min: 240, cpus_per_task: 4, gpus_per_node: 1}
  # slurm also: signal_delay_s (SIGUSR2 this long before the time limit: checkpoint + requeue),
  #   executor: auto | slurm | local (submitit's local executor, no scheduler)
  # local: {type: local, timeout_min: 90}   a run still going after 90 min is stopped, failed
"""


def _grid_from_flags(spec: SweepSpec, rho: str | None, grid: tuple[str, ...]) -> None:
    flag_grid: dict[str, list[Any]] = {}
    for text in grid:
        key, values = parse_grid_flag(text)
        if key in flag_grid:
            raise ConfigError(f"--grid {key} given twice; list every value in one flag")
        flag_grid[key] = values
    if rho is not None:
        if "optim.rho" in flag_grid:
            raise ConfigError("give rho values with --rho or --grid optim.rho=..., not both")
        flag_grid["optim.rho"] = parse_grid_flag(f"optim.rho={rho}")[1]
    if flag_grid:
        checked = check_grid(flag_grid, "--grid")
        spec.grid = {**spec.grid, **checked}
        spec.grids = [{**g, **checked} for g in spec.grids]


def _launcher_from_flags(spec: SweepSpec, launcher: str | None, flags: Mapping[str, Any]) -> None:
    given = {k: v for k, v in flags.items() if v is not None}
    current = spec.launcher.to_dict()
    if launcher is not None and launcher != current["type"]:
        current = {"type": launcher}
    for flag, value in given.items():
        section, field, _ = LAUNCHER_FLAGS[flag]
        if current["type"] != section.type:
            option = "--" + flag.replace("_", "-")
            raise ConfigError(f"{option} applies to --launcher {section.type} only")
        current[field.name] = value
    spec.launcher = parse_launcher(current, "--launcher")


def build_spec(args: SweepArgs) -> SweepSpec:
    """The sweep from a sweep file or --config, with the command-line flags applied on top."""
    if (args.sweep_file is None) == (args.config is None):
        raise click.UsageError("give a sweep file or --config (exactly one)")
    spec = (
        load_sweep_file(args.sweep_file) if args.sweep_file else spec_from_config(str(args.config))
    )
    _grid_from_flags(spec, args.rho, args.grid)
    if args.seeds is not None:
        spec.seeds = parse_seeds(args.seeds, "--seeds")
    spec.overrides = [*spec.overrides, *(parse_override(text) for text in args.overrides)]
    if args.out is not None:
        spec.out = args.out
    if args.name is not None:
        spec.name = check_name(args.name, "--name")
    if args.jobs is not None:
        spec.jobs = args.jobs
    _launcher_from_flags(spec, args.launcher, args.launcher_flags)
    return spec


@click.command("sweep", epilog=EPILOG)
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False))
@config_file("Base experiment config.", required=False, dest="config")
@click.option("--rho", metavar="R1,R2,...", help="Values of optim.rho (shorthand for --grid).")
@click.option("--seeds", metavar="0-4|0,1,2", help="Seeds; every grid point runs each seed.")
@click.option(
    "--grid", multiple=True, metavar="KEY.PATH=V1,V2", help="A grid axis (YAML values); repeatable."
)
@overrides("Override for every run.")
@click.option("--jobs", type=click.IntRange(min=1), help="Runs at once (default 1).")
@click.option("--out", metavar="DIR", help="Parent of the sweep directory (default runs/sweeps).")
@click.option("--name", metavar="NAME", help="Sweep name (default: the sweep file's or config's).")
@click.option(
    "--only",
    multiple=True,
    metavar="KEY.PATH=V1,V2",
    help="Launch only runs with these grid values (e.g. the Adam arms first); repeatable.",
)
@click.option("--dry-run", is_flag=True, help="List the runs and their states; run nothing.")
@click.option("--retry-failed", is_flag=True, help="Run failed and diverged runs again.")
@click.option("--overwrite", is_flag=True, help="Delete the sweep directory and start again.")
@QUIET
@click.option(
    "--allow-pilot-seeds",
    is_flag=True,
    help="Run although the seeds overlap those of the pilot the sweep file names.",
)
@click.option(
    "--launcher", type=click.Choice(LAUNCHERS), help="Where runs execute (default local)."
)
@_launcher_options
@with_options(SweepArgs)
def sweep(args: SweepArgs) -> None:
    """Run a grid of configs x seeds into one sweep directory, then summarize it.

    Every (grid point, seed) is an ordinary `samrl train` run under
    <out>/<name>/runs/<run_id>; all configs are validated before anything starts. Running the
    same command again skips completed runs and resumes interrupted ones. summary.csv and
    aggregate.csv are rebuilt at the end; the exit status is 1 if any run failed or diverged.

    \b
    Example:
      samrl sweep --config configs/demo.yaml --rho 0,0.01,0.05,0.1 --seeds 0-4 --jobs 2
    """
    spec = build_spec(args)
    only = parse_only_flags(args.only, spec)
    check_pilot_seeds(spec.seeds, spec.pilot, args.allow_pilot_seeds)
    if not args.dry_run:
        quiet_d3rlpy()
    options = SweepOptions(
        jobs=spec.jobs,
        dry_run=args.dry_run,
        retry_failed=args.retry_failed,
        overwrite=args.overwrite,
        progress=not args.quiet,
        only=only,
    )
    report = run_sweep(spec, options, echo=click.echo)
    if args.dry_run:
        return
    print_failures(report, lambda line: click.echo(line, err=True))
    click.echo(final_line(spec.name, report))
    code = exit_code(report)
    if code:
        sys.exit(code)
