"""The `samrl` command line."""

from __future__ import annotations

import importlib
import sys

import click

import samrl
from samrl.cli.train import algos_cmd, train
from samrl.errors import SamrlError
from samrl.quiet import quiet_d3rlpy

#: Commands that live with their subsystems: name -> (module, attribute, one-line help).
#: A command's module is imported only when that command runs (or its own --help is asked),
#: so `samrl --help` and `samrl train` never load the sweep, plotting or analysis stacks.
SUBSYSTEM_COMMANDS: dict[str, tuple[str, str, str]] = {
    "config": ("samrl.cli.config", "config_group", "Config keys: defaults and meanings."),
    "data": ("samrl.cli.data", "data_group", "Datasets: list, make, download, inspect."),
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
    "select": (
        "samrl.analysis.select_cli",
        "select_cmd",
        "Choose checkpoints without the environment.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subsystem commands are imported when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *SUBSYSTEM_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBSYSTEM_COMMANDS:
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
    samrl.import_gym_quietly()  # before any command imports d3rlpy (never for --help alone)
    quiet_d3rlpy()
    if offline:
        # For the command only (not os.environ); local sweep workers get it in their
        # environment from samrl.data.download.offline_env, Slurm and Ray workers always.
        from samrl.data.download import offline_mode

        ctx.with_resource(offline_mode())


cli.add_command(train)
cli.add_command(algos_cmd)


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
