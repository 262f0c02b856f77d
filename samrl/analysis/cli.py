"""`samrl hessian`, `samrl landscape`, `samrl sharpness`: post-hoc analysis of a run directory.

Each command loads a saved checkpoint (d3rlpy/model_<step>.d3) on the CPU, measures it on a
fixed, seeded set of training transitions and prints one summary line saying where the results
went. User errors raise SamrlError (one line, exit status 2 via samrl.cli.main).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from samrl.config.options import (
    N_TRANSITIONS,
    HessianArgs,
    LandscapeArgs,
    SharpnessArgs,
    networks,
    with_options,
)
from samrl.errors import RunError
from samrl.metrics import WORST_CASE
from samrl.quiet import quiet_d3rlpy
from samrl.results.runs import find_runs, is_run_dir

if TYPE_CHECKING:
    from samrl.analysis.posthoc import LoadedRun

T = TypeVar("T")

RUN_DIR = click.argument("run_dir", type=click.Path(path_type=Path))
STEP = click.option(
    "--step", type=int, default=None, help="Checkpoint step to load (default: the latest)."
)
SEED = click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds the transitions chosen, the noise inside the loss and the random vectors.",
)


def _names(paths: list[Path], run_dir: Path) -> str:
    return ", ".join(p.name for p in paths) + f" in {run_dir}"


def _runs_of(path: Path) -> list[Path]:
    """A run directory, or every run of a sweep directory that has a saved model: post-hoc
    results then land in each run, where summarize, plot and report find them."""
    from samrl.analysis.posthoc import checkpoint_steps

    if is_run_dir(path) or not path.is_dir():
        return [path]
    runs = [e.directory for e in find_runs(path) if checkpoint_steps(e.directory)]
    if not runs:
        raise RunError(f"{path}: no run directory with a saved model (d3rlpy/model_<step>.d3)")
    return runs


def _measure_each(
    run_dir: Path, step: int | None, measure: Callable[[LoadedRun, bool], T]
) -> tuple[int, LoadedRun, T]:
    """The per-run commands' one skeleton: every run of RUN_DIR (a run, or each run of a sweep
    with a saved model) loaded at `step` and measured, with a progress bar over runs when
    there are several (else the measurement's own: `measure(run, progress)`); returns the
    number of runs, the last run and its result."""
    from samrl.analysis import posthoc

    quiet_d3rlpy()
    runs = _runs_of(run_dir)
    for path in posthoc.progress_bar(runs, "runs", len(runs) > 1, unit="run"):
        run = posthoc.load_run(path, step)
        result = measure(run, len(runs) == 1)
    return len(runs), run, result


def _echo_sweep(what: str, n_runs: int, file_name: str, sweep_dir: Path) -> None:
    click.echo(
        f"samrl: {what} of {n_runs} runs written to {file_name} in each run of {sweep_dir} "
        "(samrl summarize/report pick them up)"
    )


@click.command("hessian")
@RUN_DIR
@STEP
@networks("Network (critic, actor, imitator, q, policy, ...); repeatable.")
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--trace-samples",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Hutchinson probes for the trace (0: no trace).",
)
@click.option("--density", is_flag=True, help="Also the spectral density (stochastic Lanczos).")
@click.option("--density-vectors", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--density-steps", type=click.IntRange(min=1), default=80, show_default=True)
@N_TRANSITIONS
@SEED
@with_options(HessianArgs)
def hessian_cmd(args: HessianArgs) -> None:
    """Top Hessian eigenvalues (and trace, density) of a saved checkpoint's network losses.

    Rows (step, net, lambda_1..k, trace, trace_se, hvp_count) go to hessian_posthoc.csv in the
    run directory (a rerun for the same step and net replaces its row; the during-training
    hessian.csv is not touched); --density writes hessian_density_<net>.csv (step, grid,
    density).

    \b
    RUN_DIR may be a sweep directory: every run with a saved model is measured, and
    summarize, plot and report show posthoc_<net>_lambda_1 per grid point.

    \b
    Example:
      samrl hessian runs/cql_sam/cql_pendulum-medium_sam-rho0.05_s0 --net critic \\
          --top-k 3 --trace-samples 20 --density
      samrl hessian runs/cql_rho --net critic      # every run of a sweep
    """
    from samrl.analysis import posthoc

    def measure(run: LoadedRun, progress: bool) -> list[Path]:
        return posthoc.hessian(
            run,
            args.nets,
            top_k=args.top_k,
            trace_samples=args.trace_samples,
            n_transitions=args.n_transitions,
            density=args.density,
            density_vectors=args.density_vectors,
            density_steps=args.density_steps,
            seed=args.seed,
            progress=progress,
        )

    n_runs, run, written = _measure_each(args.run_dir, args.step, measure)
    if n_runs > 1:
        _echo_sweep("Hessian", n_runs, written[0].name, args.run_dir)
    else:
        click.echo(f"samrl: Hessian of step {run.step} written to {_names(written, run.run_dir)}")


@click.command("landscape")
@RUN_DIR
@STEP
@click.option("--net", default=None, help="Network (default: critic, or the only one).")
@click.option("--dims", type=click.IntRange(1, 2), default=1, show_default=True)
@click.option(
    "--points",
    type=click.IntRange(min=2),
    default=21,
    show_default=True,
    help="Grid points per direction.",
)
@click.option(
    "--span",
    type=float,
    default=1.0,
    show_default=True,
    help="Grid from -span to span along each direction.",
)
@click.option(
    "--compare",
    "others",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Another run directory to draw on the same figure (same directions seed); repeatable.",
)
@N_TRANSITIONS
@SEED
@with_options(LandscapeArgs)
def landscape_cmd(args: LandscapeArgs) -> None:
    """Loss landscape along filter-normalized random directions (Li et al., 2018).

    Writes landscape_<net>.csv (run, alpha[, beta], loss) and landscape_<net>.png into RUN_DIR;
    runs given with --compare (their latest checkpoints) are evaluated with directions from
    the same seed and drawn on the same figure.

    \b
    Example:
      samrl landscape runs/cql_adam/cql_pendulum-medium_adam_s0 --net critic --dims 2 \\
          --compare runs/cql_sam/cql_pendulum-medium_sam-rho0.05_s0
    """
    from samrl.analysis import posthoc
    from samrl.analysis.network_loss import networks_of, resolve_network

    quiet_d3rlpy()
    runs = [posthoc.load_run(args.run_dir, args.step), *map(posthoc.load_run, args.others)]
    if args.net is None:
        available = list(networks_of(runs[0].algo))
        net = "critic" if "critic" in available else available[0]
    else:
        net = resolve_network(runs[0].algo, args.net)
    results = [
        posthoc.landscape(
            r,
            net,
            dims=args.dims,
            points=args.points,
            span=args.span,
            n_transitions=args.n_transitions,
            seed=args.seed,
        )
        for r in posthoc.progress_bar(runs, f"{net} landscape", True)
    ]
    labels = [r.label for r in results]
    for i, r in enumerate(results):
        if labels.count(r.label) > 1:  # the same run id in two sweeps: keep the curves apart
            r.label = f"{r.label} ({i + 1})"
    csv_path, png_path = posthoc.write_landscapes(runs[0].run_dir, net, results)
    label = f"{len(runs)} runs" if len(runs) > 1 else f"step {runs[0].step}"
    click.echo(
        f"samrl: {args.dims}-D {net} landscape of {label} written to "
        f"{_names([csv_path, png_path], runs[0].run_dir)}"
    )


@click.command("sharpness")
@RUN_DIR
@STEP
@networks("Network (default: all of the algorithm's); repeatable.")
@click.option("--rho", type=float, required=True, help="Radius of the perturbation ball.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Gradient-ascent steps (1: SAM's one-step estimate).",
)
@click.option("--adaptive", is_flag=True, help="ASAM's ball ||eps / |w| || <= rho.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="m of m-sharpness: transitions per minibatch.",
)
@click.option("--n-batches", type=click.IntRange(min=1), default=4, show_default=True)
@click.option(
    "--sigma",
    type=float,
    default=None,
    help="Std of the Gaussian perturbations (default rho / sqrt(n_params)).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Gaussian draws per minibatch.",
)
@SEED
@with_options(SharpnessArgs)
def sharpness_cmd(args: SharpnessArgs) -> None:
    """Worst-case (m-)sharpness and average-case sharpness of a saved checkpoint.

    Worst case: max over ||eps|| <= rho of L(w + eps) - L(w) by projected gradient ascent,
    averaged over --n-batches minibatches of --batch-size transitions, each with its own eps.
    Average case: mean of L(w + N(0, sigma^2 I)) - L(w) on the same minibatches. One row per
    network is added to sharpness_posthoc.csv (same settings: the row is replaced).

    \b
    RUN_DIR may be a sweep directory: every run with a saved model is measured at the same
    radius (its latest checkpoint, or --step), which makes a rho sweep comparable; summarize,
    plot and report then show posthoc_<net>_rho<r>_worst_case per grid point.

    \b
    Example:
      samrl sharpness runs/cql_sam/cql_pendulum-medium_sam-rho0.05_s0 --rho 0.05 --steps 5 \\
          --batch-size 256 --n-batches 8
      samrl sharpness runs/cql_rho --rho 0.05      # every run of a sweep
    """
    from samrl.analysis import posthoc

    def measure(run: LoadedRun, progress: bool) -> tuple[Path, list[dict[str, Any]]]:
        return posthoc.sharpness(
            run,
            args.nets,
            rho=args.rho,
            steps=args.steps,
            adaptive=args.adaptive,
            batch_size=args.batch_size,
            n_batches=args.n_batches,
            sigma=args.sigma,
            n_samples=args.samples,
            seed=args.seed,
            progress=progress,
        )

    n_runs, run, (path, rows) = _measure_each(args.run_dir, args.step, measure)
    if n_runs > 1:
        _echo_sweep(f"sharpness at rho={args.rho:g}", n_runs, path.name, args.run_dir)
        return
    values = ", ".join(f"{r['net']} {r[WORST_CASE]:.4g}" for r in rows)
    click.echo(
        f"samrl: sharpness of step {run.step} at rho={args.rho:g} ({values}) written to "
        f"{path.name} in {run.run_dir}"
    )
