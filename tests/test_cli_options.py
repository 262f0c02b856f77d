"""Commands' typed options (samrl.config.options): click parses, `with_options` hands the parsed
values to the command as one frozen dataclass, field for parameter, nothing added or lost."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import run_cli

from samrl.analysis.cli import hessian_cmd, landscape_cmd, sharpness_cmd
from samrl.analysis.select_cli import select_cmd
from samrl.config.launchers import SlurmLauncher
from samrl.config.options import (
    CommandArgs,
    HessianArgs,
    LandscapeArgs,
    SelectArgs,
    SharpnessArgs,
    SweepArgs,
    with_options,
)
from samrl.config.yamlio import parse_override
from samrl.sweep.cli import LAUNCHER_FLAGS, build_spec, sweep
from samrl.sweep.grid import load_sweep_file, parse_seeds
from samrl.sweep.runner import SweepOptions

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "sweeps" / "smoke.yaml"
TYPED = [
    (sweep, SweepArgs),
    (hessian_cmd, HessianArgs),
    (landscape_cmd, LandscapeArgs),
    (sharpness_cmd, SharpnessArgs),
    (select_cmd, SelectArgs),
]


def _parsed(command: click.Command, argv: list[str]) -> dict[str, Any]:
    """What click parses of argv for the command (its callback is not run)."""
    with command.make_context(command.name, argv) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize(("command", "cls"), TYPED, ids=[c.name for c, _ in TYPED])
def test_each_command_takes_one_typed_argument_with_a_field_per_parameter(
    command: click.Command, cls: type[CommandArgs]
) -> None:
    assert command.callback is not None
    function = inspect.unwrap(command.callback)
    assert list(inspect.signature(function).parameters) == ["args"]
    params = {p.name for p in command.params}
    fields = {f.name for f in dataclasses.fields(cls)}
    if cls is SweepArgs:  # the launcher sections' flags are gathered into one mapping
        assert params - fields == set(LAUNCHER_FLAGS) and fields - params == {"launcher_flags"}
    else:
        assert params == fields
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_with_options_passes_exactly_what_click_parsed() -> None:
    @dataclasses.dataclass(frozen=True)
    class Args(CommandArgs):
        name: str
        count: int
        flag: bool

    seen: list[Args] = []

    @click.command()
    @click.argument("name")
    @click.option("--count", type=int, default=3)
    @click.option("--flag", is_flag=True)
    @with_options(Args)
    def command(args: Args) -> None:
        """Doc."""
        seen.append(args)

    command.main(["x", "--flag"], standalone_mode=False)
    assert seen == [Args(name="x", count=3, flag=True)]
    assert command.help == "Doc."


def test_sweep_args_hold_the_parsed_values_launcher_flags_apart() -> None:
    argv = [str(SMOKE), "--rho", "0,0.1", "--seeds", "3-4", "--grid", "train.n_steps=10,20"]
    argv += ["--set", "train.batch_size=32", "--jobs", "3", "--out", "/tmp/o", "--name", "nm"]
    argv += ["--dry-run", "--quiet", "--launcher", "slurm", "--partition", "gpu"]
    argv += ["--cpus-per-task", "2"]
    params = _parsed(sweep, argv)
    args = SweepArgs.from_params(params)
    assert args == SweepArgs(
        sweep_file=str(SMOKE),
        rho="0,0.1",
        seeds="3-4",
        grid=("train.n_steps=10,20",),
        overrides=("train.batch_size=32",),
        jobs=3,
        out="/tmp/o",
        name="nm",
        dry_run=True,
        quiet=True,
        launcher="slurm",
        launcher_flags={name: params[name] for name in LAUNCHER_FLAGS},
    )
    assert set(args.launcher_flags) == set(LAUNCHER_FLAGS)
    given = {name: value for name, value in args.launcher_flags.items() if value is not None}
    assert given == {"partition": "gpu", "cpus_per_task": 2}


def test_the_spec_from_sweep_args_is_the_sweep_file_with_the_flags_on_top() -> None:
    """build_spec(SweepArgs) on a shipped sweep file: what the old keyword path built, the
    file's spec with each flag applied by the grid module's own parsers."""
    args = SweepArgs(
        sweep_file=str(SMOKE),
        seeds="3-4",
        overrides=("train.batch_size=32",),
        jobs=3,
        name="nm",
        launcher="slurm",
        launcher_flags={"partition": "gpu", "cpus_per_task": 2, "num_cpus": None},
    )
    expected = load_sweep_file(str(SMOKE))
    expected.seeds = parse_seeds("3-4", "--seeds")
    expected.overrides = [*expected.overrides, parse_override("train.batch_size=32")]
    expected.jobs, expected.name = 3, "nm"
    expected.launcher = SlurmLauncher(partition="gpu", cpus_per_task=2)
    assert build_spec(args) == expected
    assert build_spec(SweepArgs(sweep_file=str(SMOKE))) == load_sweep_file(str(SMOKE))


def test_samrl_sweep_runs_the_spec_build_spec_makes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[Any, SweepOptions]] = []
    monkeypatch.setattr(
        "samrl.sweep.cli.run_sweep", lambda spec, options, echo: seen.append((spec, options))
    )
    argv = ["sweep", str(SMOKE), "--seeds", "5", "--jobs", "1", "--dry-run", "--quiet"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    ((spec, options),) = seen
    assert spec == build_spec(SweepArgs(sweep_file=str(SMOKE), seeds="5", jobs=1))
    assert options == SweepOptions(
        jobs=1, dry_run=True, retry_failed=False, overwrite=False, progress=False
    )


def test_hessian_args_hold_the_parsed_values() -> None:
    argv = ["r", "--net", "critic", "--net", "actor", "--top-k", "3", "--density"]
    assert HessianArgs.from_params(_parsed(hessian_cmd, argv)) == HessianArgs(
        run_dir=Path("r"),
        step=None,
        nets=("critic", "actor"),
        top_k=3,
        trace_samples=0,
        density=True,
        density_vectors=5,
        density_steps=80,
        n_transitions=1024,
        seed=0,
    )


def test_landscape_args_hold_the_parsed_values() -> None:
    argv = ["r", "--step", "7", "--dims", "2", "--span", "0.5", "--compare", "o1", "--seed", "4"]
    assert LandscapeArgs.from_params(_parsed(landscape_cmd, argv)) == LandscapeArgs(
        run_dir=Path("r"),
        step=7,
        net=None,
        dims=2,
        points=21,
        span=0.5,
        others=(Path("o1"),),
        n_transitions=1024,
        seed=4,
    )


def test_sharpness_args_hold_the_parsed_values() -> None:
    argv = ["r", "--rho", "0.05", "--steps", "5", "--adaptive", "--sigma", "0.01"]
    assert SharpnessArgs.from_params(_parsed(sharpness_cmd, argv)) == SharpnessArgs(
        run_dir=Path("r"),
        rho=0.05,
        step=None,
        nets=(),
        steps=5,
        adaptive=True,
        batch_size=256,
        n_batches=4,
        sigma=0.01,
        samples=10,
        seed=0,
    )


def test_select_args_hold_the_parsed_values() -> None:
    argv = ["a", "b", "--signals", "td_error, critic_sharpness,", "--fqe-steps", "10"]
    args = SelectArgs.from_params(_parsed(select_cmd, [*argv, "--n-boot", "50", "--quiet"]))
    assert args == SelectArgs(
        dirs=(Path("a"), Path("b")),
        signals="td_error, critic_sharpness,",
        rho=0.05,
        fqe_steps=10,
        opc_quantile=0.5,
        out=None,
        quiet=True,
        n_boot=50,
        seed=0,
    )
    assert args.signal_names == ("td_error", "critic_sharpness")
