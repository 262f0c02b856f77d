"""Commands' options as typed objects: one frozen dataclass per command's option group.

click still declares and parses every option (`@click.option` on the command); `with_options`
then hands the parsed values to the command function as one instance of the dataclass, whose
fields are named as click names the parameters. The launcher options of `samrl sweep` are
typed the same way in samrl.config.launchers. Option blocks that several commands share are
declared once below (QUIET, CONFIG_FILE, OVERRIDES, ...).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

A = TypeVar("A", bound="CommandArgs")
R = TypeVar("R")

#: `--quiet`: every command that draws a progress bar.
QUIET = click.option("--quiet", is_flag=True, help="No progress bar.")
#: `--n-transitions` of the post-hoc measurements (hessian, landscape).
N_TRANSITIONS = click.option(
    "--n-transitions", type=click.IntRange(min=1), default=1024, show_default=True
)


def config_file(help: str, *, required: bool = True, dest: str = "config_path") -> Any:
    """`--config FILE`: an experiment config (train, sweep, data export)."""
    return click.option(
        "--config", dest, required=required, type=click.Path(dir_okay=False), help=help
    )


def overrides(help: str) -> Any:
    """`--set KEY.PATH=VALUE`, repeatable, into the parameter `overrides` (train, sweep)."""
    return click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help=help)


def networks(help: str) -> Any:
    """`--net`, repeatable, into the parameter `nets` (hessian, sharpness)."""
    return click.option("--net", "nets", multiple=True, help=help)


@dataclasses.dataclass(frozen=True)
class CommandArgs:
    """A command's parsed options. `from_params` builds it from click's keyword arguments;
    a subclass whose command takes more than its fields overrides it."""

    @classmethod
    def from_params(cls: type[A], params: Mapping[str, Any]) -> A:
        return cls(**params)


def with_options(cls: type[A]) -> Callable[[Callable[[A], R]], Callable[..., R]]:
    """Put below a command's click options: the command function then takes one argument,
    the options as a `cls`, built from exactly the values click parsed."""

    def decorate(function: Callable[[A], R]) -> Callable[..., R]:
        @functools.wraps(function)
        def command(**params: Any) -> R:
            return function(cls.from_params(params))

        return command

    return decorate


@dataclasses.dataclass(frozen=True)
class SweepArgs(CommandArgs):
    """`samrl sweep`: what the sweep is (a file or --config, and flags on top of it) and how it
    runs. `launcher_flags` holds the launcher sections' own flags (--partition, --num-cpus, ...:
    samrl.config.launchers), by field name."""

    sweep_file: str | None = None
    config: str | None = None
    rho: str | None = None
    seeds: str | None = None
    grid: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    jobs: int | None = None
    out: str | None = None
    name: str | None = None
    dry_run: bool = False
    retry_failed: bool = False
    overwrite: bool = False
    quiet: bool = False
    allow_pilot_seeds: bool = False
    launcher: str | None = None
    launcher_flags: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SweepArgs:
        names = {f.name for f in dataclasses.fields(cls)} - {"launcher_flags"}
        own = {k: v for k, v in params.items() if k in names}
        flags = {k: v for k, v in params.items() if k not in names}
        return cls(**own, launcher_flags=flags)


@dataclasses.dataclass(frozen=True)
class HessianArgs(CommandArgs):
    """`samrl hessian`: the run (or sweep) and checkpoint, and what is computed of its Hessian."""

    run_dir: Path
    step: int | None
    nets: tuple[str, ...]
    top_k: int
    trace_samples: int
    density: bool
    density_vectors: int
    density_steps: int
    n_transitions: int
    seed: int


@dataclasses.dataclass(frozen=True)
class LandscapeArgs(CommandArgs):
    """`samrl landscape`: the run, the runs drawn beside it (`others`) and the grid."""

    run_dir: Path
    step: int | None
    net: str | None
    dims: int
    points: int
    span: float
    others: tuple[Path, ...]
    n_transitions: int
    seed: int


@dataclasses.dataclass(frozen=True)
class SharpnessArgs(CommandArgs):
    """`samrl sharpness`: the run (or sweep) and checkpoint, the radius and how the worst and
    average case are estimated."""

    run_dir: Path
    rho: float
    step: int | None
    nets: tuple[str, ...]
    steps: int
    adaptive: bool
    batch_size: int
    n_batches: int
    sigma: float | None
    samples: int
    seed: int


@dataclasses.dataclass(frozen=True)
class SelectArgs(CommandArgs):
    """`samrl select`: the directories, the signals and where the outputs go."""

    dirs: tuple[Path, ...]
    signals: str
    rho: float
    fqe_steps: int
    opc_quantile: float
    out: Path | None
    quiet: bool
    n_boot: int
    seed: int

    @property
    def signal_names(self) -> tuple[str, ...]:
        """--signals split at commas, blanks dropped."""
        return tuple(s.strip() for s in self.signals.split(",") if s.strip())
