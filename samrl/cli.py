"""The `samrl` command line."""

from __future__ import annotations

import sys

import click

from samrl.errors import SamrlError
from samrl.quiet import quiet_d3rlpy

#: Commands that live with their subsystems: name -> (module, attribute, one-line help).
#: A command's module is imported only when that command runs (or its own --help is asked),
#: so `samrl --help` and `samrl train` never load the sweep, plotting or analysis stacks.
SUBSYSTEM_COMMANDS: dict[str, tuple[str, str, str]] = {
    "config": ("samrl.config_cli", "config_group", "Config keys: defaults and meanings."),
    "data": ("samrl.data_cli", "data_group", "Datasets: list, make, download, inspect."),
    "sweep": ("samrl.sweep.cli", "sweep", "Run a grid of configs x seeds into one sweep."),
    "summarize": ("samrl.results.cli", "summarize_cmd", "Write summary.csv and aggregate.csv."),
    "seed-table": (
        "samrl.results.cli",
        "seed_table_cmd",
        "The seed experiment's table with seeds and CIs.",
    ),
    "corruption-table": (
        "samrl.results.cli",
        "corruption_table_cmd",
        "SAM vs Adam on corrupted data, beside the paper.",
    ),
    "plot": ("samrl.results.plot_cli", "plot_cmd", "Plot curves of a run or a sweep (PNG)."),
    "report": ("samrl.results.plot_cli", "report_cmd", "Write report.md of a sweep."),
    "hessian": ("samrl.analysis.cli", "hessian_cmd", "Hessian eigenvalues of a saved model."),
    "landscape": ("samrl.analysis.cli", "landscape_cmd", "Loss landscape of a saved model."),
    "sharpness": ("samrl.analysis.cli", "sharpness_cmd", "Sharpness of a saved model."),
}


class LazyGroup(click.Group):
    """A click group whose subsystem commands are imported when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *SUBSYSTEM_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBSYSTEM_COMMANDS:
            import importlib

            import samrl

            # click resolves the command before the group callback runs: a module that
            # imports d3rlpy (samrl.data does) would print gym's notice first.
            samrl.import_gym_quietly()
            module, attribute, _ = SUBSYSTEM_COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table: listing commands imports none of them."""
        rows = []
        for name in self.list_commands(ctx):
            if name in SUBSYSTEM_COMMANDS:
                rows.append((name, SUBSYSTEM_COMMANDS[name][2]))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="samrl")
@click.option(
    "--offline",
    is_flag=True,
    help="Never download datasets (same as SAMRL_OFFLINE=1; inherited by sweep workers).",
)
@click.pass_context
def cli(ctx: click.Context, offline: bool) -> None:
    """Sharpness-Aware Minimization for offline RL on d3rlpy 2.8.1.

    \b
    samrl train --config configs/cql_sam.yaml
    samrl sweep --config configs/cql_sam.yaml --rho 0,0.05,0.1 --seeds 0-2 --jobs 2
    samrl summarize runs/sweeps/cql_sam
    samrl --offline train --config configs/d4rl/cql_sam_hopper-medium-v2.yaml
    """
    import samrl

    samrl.import_gym_quietly()  # before any command imports d3rlpy (never for --help alone)
    quiet_d3rlpy()
    if offline:
        # For the command only (not os.environ); local sweep workers get it in their
        # environment from samrl.data.download.offline_env, Slurm and Ray workers always.
        from samrl.data.download import offline_mode

        ctx.with_resource(offline_mode())


@cli.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="YAML experiment config.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a config key (YAML-typed value); repeatable.",
)
@click.option("--dry-run", is_flag=True, help="Print the resolved config and run directory.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run from its checkpoint (a run that never started is "
    "started, and the command says so).",
)
@click.option("--overwrite", is_flag=True, help="Delete an existing run directory first.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
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
    from samrl.config import load_config

    config = load_config(config_path, overrides)
    if dry_run:
        click.echo(config.to_yaml().rstrip())
        click.echo(f"# run directory: {config.run_dir}")
        return
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    from samrl.run.train import run_training
    from samrl.rundir import RunDir

    if resume and not RunDir(config.run_dir).is_run():
        click.echo(
            f"samrl: nothing to resume: no run in {config.run_dir}; starting it from scratch",
            err=True,
        )
    result = run_training(config, resume=resume, overwrite=overwrite, progress=not quiet)
    from samrl.status import RunStatus

    if result.status == RunStatus.SKIPPED:
        click.echo(f"samrl: {result.message}; nothing to do")
        return
    if result.status == RunStatus.COMPLETED:
        from samrl.rundir import TABLE_FILES

        tables = [n for n in TABLE_FILES if (result.run_dir / n).exists()]
        click.echo(
            f"samrl: run completed ({result.steps_done} steps); {', '.join(tables)} "
            f"in {result.run_dir}"
        )
        return
    if result.status == RunStatus.INTERRUPTED:
        import shlex
        import signal

        again = ["samrl", "train", "--config", config_path]
        again += [f"--set={text}" for text in overrides] + ["--resume"]
        click.echo(f"samrl: {result.message}; resume with: {shlex.join(again)}", err=True)
        sys.exit(128 + int(getattr(signal, result.signal, signal.SIGINT)))
    click.echo(
        f"samrl: run {result.status}: {result.message}; what was written is in {result.run_dir}",
        err=True,
    )
    sys.exit(1)


@cli.command("algos")
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors end in one line on stderr and exit status 2."""
    try:
        cli.main(args=argv, prog_name="samrl", standalone_mode=False)
    except SamrlError as exc:
        click.echo(f"samrl: {exc.kind}: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("samrl: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"samrl: error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
