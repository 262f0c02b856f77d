"""Curvature, landscapes and sharpness of saved checkpoints in a run directory.

A run directory (docs/run-directory.md) holds ``config.yaml`` and d3rlpy's checkpoints
``d3rlpy/model_<step>.d3``. :func:`load_run` loads one checkpoint on the CPU with the run's
training split; the functions below measure it and write CSV files next to the run's own:

- ``hessian_posthoc.csv``: one row per (step, net); ``hessian_density_<net>.csv``: (step, grid,
  density). The during-training ``hessian.csv`` (one row per epoch) is left alone.
- ``landscape_<net>.csv`` / ``.png``: loss along filter-normalized random directions.
- ``sharpness_posthoc.csv``: worst-case (m-)sharpness and average-case sharpness.

Rerunning with the same key (step, net, settings) replaces the earlier row.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from tqdm import tqdm

from samrl.algos import algo_facts, register
from samrl.analysis.curvature import spectral_density
from samrl.analysis.during_training import network_curvature
from samrl.analysis.landscape import filter_normalized_direction, loss_surface_1d, loss_surface_2d
from samrl.analysis.network_loss import (
    evaluation_batch,
    evaluation_batches,
    network_loss_fn,
    networks_of,
    resolve_network,
)
from samrl.analysis.worst_case import average_sharpness, m_sharpness
from samrl.config import DatasetSection
from samrl.config.sections import RUN_RECORD
from samrl.data import load_dataset
from samrl.errors import RunError, SamrlError
from samrl.metrics import AVERAGE_CASE, WORST_CASE
from samrl.progress import disable_unless_terminal
from samrl.results.plots import save
from samrl.rundir import (
    CONFIG_FILE,
    D3RLPY_LOG_DIR,
    POSTHOC_HESSIAN_FILE,
    POSTHOC_SHARPNESS_FILE,
    RunDir,
    atomic_write,
)
from samrl.safeload import load_learnable
from samrl.sam import install

if TYPE_CHECKING:
    import torch

    from samrl.analysis.network_loss import LossFn

HESSIAN_FILE = POSTHOC_HESSIAN_FILE
SHARPNESS_FILE = POSTHOC_SHARPNESS_FILE


@dataclasses.dataclass
class LoadedRun:
    run_dir: Path
    run_id: str
    step: int
    algo: Any
    dataset: Any  # the training split (d3rlpy ReplayBuffer)


# ------------------------------------------------------------------------------ loading


def progress_bar(items: Sequence[Any], desc: str, enabled: bool, unit: str = "net") -> Any:
    """A tqdm bar on stderr over the networks (or runs) a post-hoc command works through;
    none when stderr is not a terminal (tqdm's disable=None), so logs get no carriage returns."""
    return tqdm(
        items,
        desc=desc,
        unit=unit,
        disable=disable_unless_terminal(enabled),
        leave=False,
        file=sys.stderr,
    )


def _read_config(run_dir: Path) -> dict[str, Any]:
    if not run_dir.exists():
        raise RunError(f"{run_dir}: no such directory")
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is a file, not a run directory")
    path = RunDir(run_dir).config_file
    if not path.is_file():
        raise RunError(f"{run_dir} is not a samrl run directory (no {CONFIG_FILE})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RunError(f"{path}: malformed YAML ({exc})") from None
    dataset = data.get("dataset") if isinstance(data, dict) else None
    if not isinstance(dataset, dict) or "name" not in dataset:
        raise RunError(f"{path} has no dataset section; is this a samrl run directory?")
    return data


def checkpoint_steps(run_dir: Path) -> dict[int, Path]:
    """Step -> saved model file, for every ``d3rlpy/model_<step>.d3`` in the run."""
    return RunDir(run_dir).model_files()


def load_run(run_dir: str | Path, step: int | None = None) -> LoadedRun:
    """Load the checkpoint of ``step`` (default: the latest) on the CPU, with the SAM engine
    installed, and the run's training split (regenerated from the config if not cached)."""
    run_dir = Path(run_dir)
    config = _read_config(run_dir)
    steps = checkpoint_steps(run_dir)
    if not steps:
        raise RunError(
            f"{run_dir} has no saved model ({D3RLPY_LOG_DIR}/model_<step>.d3); "
            "train it first (checkpoints are written every train.save_interval epochs)"
        )
    if step is None:
        step = max(steps)
    elif step not in steps:
        raise RunError(
            f"{run_dir} has no checkpoint for step {step}; available steps: "
            f"{', '.join(map(str, steps))}"
        )
    register()  # d3rlpy.load_learnable must know samrl's factory, COMBO and RIQL
    algo_name = (config.get("algo") or {}).get("name")
    if algo_name:
        algo_facts(str(algo_name))  # imports samrl's own algorithms so d3rlpy can load them
    dataset = run_dataset(config)
    # d3rlpy.load_learnable would unpickle whatever the (maybe someone else's) file holds
    algo = load_learnable(steps[step], device="cpu:0")
    install(algo)
    run_id = (config.get(RUN_RECORD) or {}).get("run_id") or run_dir.name
    return LoadedRun(run_dir, str(run_id), step, algo, dataset.train)


def run_dataset(config: dict[str, Any]) -> Any:
    """The run's dataset as it trained on it (a LoadedDataset: training split and held-out
    episodes), regenerated from its resolved config when not cached."""
    ds = DatasetSection.from_mapping(config["dataset"])
    return load_dataset(
        ds.name,
        size=ds.size,
        seed=ds.seed,
        test_fraction=ds.test_fraction,
        corruption=ds.corruption,
    )


def select_networks(algo: Any, nets: Sequence[str] | None) -> list[str]:
    """The requested networks (all of the algorithm's when none), checked."""
    available = list(networks_of(algo))
    if not nets:
        return available
    return list(dict.fromkeys(resolve_network(algo, net) for net in nets))


# ------------------------------------------------------------------------------ CSV files


def merge_rows(path: Path, rows: list[dict[str, Any]], key: Sequence[str]) -> None:
    """Write ``rows`` into the CSV at ``path``; earlier rows whose ``key`` values equal those of
    a new row are dropped. Columns are the union (earlier first)."""
    old: list[dict[str, str]] = []
    columns: list[str] = []
    if path.exists():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            old = list(reader)
    new_text = [{k: _fmt(v) for k, v in row.items()} for row in rows]
    keys = {tuple(r.get(k, "") for k in key) for r in new_text}
    kept = [r for r in old if tuple(r.get(k, "") for k in key) not in keys]
    for row in new_text:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(kept + new_text)
    atomic_write(path, buffer.getvalue())


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


# ------------------------------------------------------------------------------ hessian


def hessian(
    run: LoadedRun,
    nets: Sequence[str] | None = None,
    *,
    top_k: int = 1,
    trace_samples: int = 0,
    n_transitions: int = 1024,
    density: bool = False,
    density_vectors: int = 5,
    density_steps: int = 80,
    seed: int = 0,
    progress: bool = False,
) -> list[Path]:
    """Top-k eigenvalues (+ Hutchinson trace, + spectral density) of each network's loss on a
    fixed seeded batch. Returns the files written."""
    nets = select_networks(run.algo, nets)
    batch = evaluation_batch(run.algo, run.dataset, n_transitions, seed)
    rows = []
    written = [run.run_dir / HESSIAN_FILE]
    for net in progress_bar(nets, "hessian", progress):
        values = network_curvature(
            run.algo, net, batch, top_k=top_k, trace_samples=trace_samples, seed=seed
        )
        rows.append(
            {"step": run.step, "net": net, "n_transitions": n_transitions, "seed": seed, **values}
        )
        if density:
            loss_fn, params = network_loss_fn(run.algo, net, batch, seed=seed)
            grid, dens, _ = spectral_density(
                loss_fn, params, n_vectors=density_vectors, lanczos_steps=density_steps, seed=seed
            )
            path = run.run_dir / f"hessian_density_{net}.csv"
            merge_rows(
                path,
                [
                    {"step": run.step, "grid": float(g), "density": float(d)}
                    for g, d in zip(grid, dens, strict=True)
                ],
                key=("step",),  # a rerun replaces that step's whole curve
            )
            written += [path, _plot_density(path, net)]
    merge_rows(run.run_dir / HESSIAN_FILE, rows, key=("step", "net"))
    return written


# ------------------------------------------------------------------------------ landscape


@dataclasses.dataclass
class Landscape:
    label: str
    alphas: np.ndarray
    betas: np.ndarray | None
    losses: np.ndarray  # (n,) or (n, n)


def landscape(
    run: LoadedRun,
    net: str,
    *,
    dims: int = 1,
    points: int = 21,
    span: float = 1.0,
    n_transitions: int = 1024,
    seed: int = 0,
) -> Landscape:
    """Loss of ``net`` at w + a d1 (+ b d2) for a, b in linspace(-span, span, points), with
    filter-normalized Gaussian directions drawn from ``seed`` (d2 from ``seed + 1``), so runs of
    the same architecture get the same random draws."""
    if dims not in (1, 2):
        raise SamrlError(f"--dims must be 1 or 2, got {dims}")
    if points < 2:
        raise SamrlError(f"--points must be >= 2, got {points}")
    if not span > 0:
        raise SamrlError(f"--span must be > 0, got {span}")
    select_networks(run.algo, [net])
    batch = evaluation_batch(run.algo, run.dataset, n_transitions, seed)
    loss_fn, params = network_loss_fn(run.algo, net, batch, seed=seed)
    alphas = np.linspace(-span, span, points)
    d1 = filter_normalized_direction(params, seed)
    if dims == 1:
        return Landscape(run.run_id, alphas, None, loss_surface_1d(loss_fn, params, d1, alphas))
    d2 = filter_normalized_direction(params, seed + 1)
    losses = loss_surface_2d(loss_fn, params, d1, d2, alphas, alphas)
    return Landscape(run.run_id, alphas, alphas, losses)


def write_landscapes(out_dir: Path, net: str, results: list[Landscape]) -> tuple[Path, Path]:
    """``landscape_<net>.csv`` (run, alpha[, beta], loss) and a figure of all runs."""
    rows: list[dict[str, Any]] = []
    for r in results:
        if r.betas is None:
            rows += [
                {"run": r.label, "alpha": a, "loss": v}
                for a, v in zip(r.alphas, r.losses, strict=True)
            ]
        else:
            rows += [
                {"run": r.label, "alpha": a, "beta": b, "loss": r.losses[i, j]}
                for i, a in enumerate(r.alphas)
                for j, b in enumerate(r.betas)
            ]
    # 1-D and 2-D landscapes are different files: --dims 2 must not overwrite --dims 1.
    stem = f"landscape_{net}" if results[0].betas is None else f"landscape_{net}_2d"
    csv_path = out_dir / f"{stem}.csv"
    if csv_path.exists():
        csv_path.unlink()  # one landscape per network and dims: a new call replaces the old one
    merge_rows(csv_path, rows, key=("run", "alpha", "beta"))
    png_path = out_dir / f"{stem}.png"
    _plot_landscapes(png_path, net, results)
    return csv_path, png_path


def _plot_landscapes(path: Path, net: str, results: list[Landscape]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if results[0].betas is None:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for r in results:
            ax.plot(r.alphas, r.losses, marker=".", label=r.label)
        ax.set_xlabel("alpha (filter-normalized direction)")
        ax.set_ylabel(f"{net} loss")
        if len(results) > 1:
            ax.legend(fontsize="small")
    else:
        from matplotlib.ticker import MaxNLocator

        fig, axes = plt.subplots(
            1,
            len(results),
            figsize=(4.6 * len(results) + 1.0, 4),
            squeeze=False,
            layout="constrained",
        )
        # One colour scale for every run, so the panels compare; a colourbar instead of
        # contour labels (they collide).
        low = min(float(np.nanmin(r.losses)) for r in results)
        high = max(float(np.nanmax(r.losses)) for r in results)
        levels = np.linspace(low, high, 21) if high > low else 21
        filled = None
        for ax, r in zip(axes[0], results, strict=True):
            assert r.betas is not None
            filled = ax.contourf(r.alphas, r.betas, r.losses.T, levels=levels, cmap="viridis")
            ax.contour(
                r.alphas,
                r.betas,
                r.losses.T,
                levels=levels,
                colors="white",
                linewidths=0.4,
                alpha=0.5,
            )
            ax.plot([0], [0], "r+", markersize=10, label="trained weights")
            ax.set_title(r.label, fontsize="small")
            ax.set_xlabel("alpha (direction 1)")
            ax.set_ylabel("beta (direction 2)")
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            ax.set_aspect("equal")
        fig.colorbar(filled, ax=list(axes[0]), label=f"{net} loss")
    fig.suptitle(f"{net} loss landscape (Li et al. 2018 directions)", fontsize="medium")
    if results[0].betas is None:
        fig.tight_layout()
    save(fig, path, dpi=120)
    plt.close(fig)


def _plot_density(csv_path: Path, net: str) -> Path:
    """hessian_density_<net>.png: the spectral density of each measured step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.read_csv(csv_path)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for step, rows in table.groupby("step"):
        ax.plot(rows["grid"], rows["density"], label=f"step {step}")
    ax.set_yscale("log")
    ax.set_xlabel("Hessian eigenvalue")
    ax.set_ylabel("spectral density (log scale)")
    ax.set_title(f"{net} Hessian spectral density (stochastic Lanczos quadrature)")
    ax.grid(alpha=0.3)
    if table["step"].nunique() > 1:
        ax.legend(fontsize="small")
    png = save(fig, csv_path.with_suffix(".png"), dpi=120, pdf=False)
    plt.close(fig)
    return png


# ------------------------------------------------------------------------------ sharpness


def _check_sharpness_options(rho: float, steps: int, n_samples: int, sigma: float | None) -> None:
    """The options of `samrl analyze sharpness`, refused with the flag's name."""
    if not rho >= 0:
        raise SamrlError(f"--rho must be >= 0, got {rho}")
    if steps < 1:
        raise SamrlError(f"--steps must be >= 1, got {steps}")
    if n_samples < 1:
        raise SamrlError(f"--samples must be >= 1, got {n_samples}")
    if sigma is not None and not sigma >= 0:
        raise SamrlError(f"--sigma must be >= 0, got {sigma}")


def _average_case(
    fns: list[LossFn],
    params: list[torch.Tensor],
    sigma: float,
    n_samples: int,
    *,
    seed: int,
    adaptive: bool,
) -> tuple[float, float]:
    """Average-case sharpness, the mean over the minibatches' loss functions (minibatch i
    seeded seed + i) and its standard error (nan for one minibatch)."""
    avg = [
        average_sharpness(fn, params, sigma, n_samples, seed=seed + i, adaptive=adaptive)[
            "sharpness"
        ]
        for i, fn in enumerate(fns)
    ]
    avg_se = float(np.std(avg, ddof=1) / math.sqrt(len(avg))) if len(avg) > 1 else math.nan
    return float(np.mean(avg)), avg_se


def sharpness(
    run: LoadedRun,
    nets: Sequence[str] | None = None,
    *,
    rho: float,
    steps: int = 1,
    adaptive: bool = False,
    batch_size: int = 256,
    n_batches: int = 4,
    sigma: float | None = None,
    n_samples: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> tuple[Path, list[dict[str, Any]]]:
    """Worst-case sharpness in the rho-ball by ``steps``-step projected gradient ascent
    (``steps=1`` is SAM's estimate), averaged over ``n_batches`` minibatches of ``batch_size``
    (m-sharpness), and average-case sharpness E L(w + N(0, sigma^2)) - L(w) on the same
    minibatches (default sigma = rho / sqrt(n_params): the same expected radius as the ball;
    with ``adaptive`` both use ASAM's |w| scaling). Returns the file and its new rows."""
    _check_sharpness_options(rho, steps, n_samples, sigma)
    nets = select_networks(run.algo, nets)
    batches = evaluation_batches(run.algo, run.dataset, batch_size, n_batches, seed)
    rows = []
    for net in progress_bar(nets, "sharpness", progress):
        closures = [network_loss_fn(run.algo, net, b, seed=seed) for b in batches]
        params = closures[0][1]
        fns = [fn for fn, _ in closures]
        worst = m_sharpness(fns.__getitem__, n_batches, params, rho, steps, adaptive=adaptive)
        n_params = sum(p.numel() for p in params)
        s = rho / math.sqrt(n_params) if sigma is None else sigma
        avg, avg_se = _average_case(fns, params, s, n_samples, seed=seed, adaptive=adaptive)
        rows.append(
            {
                "step": run.step,
                "net": net,
                "rho": rho,
                "steps": steps,
                "adaptive": adaptive,
                "batch_size": batch_size,
                "n_batches": n_batches,
                "sigma": s,
                "seed": seed,
                WORST_CASE: worst["sharpness"],
                f"{WORST_CASE}_se": worst["standard_error"],
                "loss": worst["loss"],
                "loss_perturbed": worst["loss_perturbed"],
                AVERAGE_CASE: avg,
                f"{AVERAGE_CASE}_se": avg_se,
                "n_params": n_params,
            }
        )
    path = run.run_dir / SHARPNESS_FILE
    key = ("step", "net", "rho", "steps", "adaptive", "batch_size", "n_batches", "sigma", "seed")
    merge_rows(path, rows, key=key)
    return path, rows
