"""Hand-made run and sweep directories (no training): what samrl train writes, with the
numbers a test asks for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


def write_run(
    run_dir: Path,
    *,
    rho: float,
    seed: int,
    status: str = "completed",
    score: float | None = None,
    sharpness: list[float] | None = None,
    optim: str = "sam",
    sweep_point: dict[str, Any] | None = None,
    n_epochs: int = 4,
) -> Path:
    """A run directory as train.py writes it (docs/run-directory.md), with simple numbers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    point = sweep_point if sweep_point is not None else {"optim.rho": rho}
    config = {
        "name": "toy",
        "algo": {"name": "cql", "params": {"batch_size": 32}},
        "dataset": {"name": "pendulum-medium", "size": 1000},
        "optim": {"name": optim, "base": "adam", "rho": rho},
        "train": {"n_steps": 10 * n_epochs, "n_steps_per_epoch": 10, "seed": seed},
        "output": {"dir": "runs"},
        "samrl": {
            "version": "0.1.0",
            "d3rlpy": "2.8.1",
            "torch": "2.5.0",
            "python": "3.11.9",
            "device": "cpu",
            "run_id": run_dir.name,
        },
        "sweep": {"name": "toy", "point": point},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    epochs = np.arange(1, n_epochs + 1)
    steps = 10 * epochs
    pd.DataFrame(
        {"epoch": epochs, "step": steps, "critic_loss": 1.0 / epochs, "actor_loss": -epochs * 1.0}
    ).to_csv(run_dir / "loss.csv", index=False)
    values = sharpness if sharpness is not None else [0.1 * e for e in epochs]
    pd.DataFrame(
        {
            "epoch": epochs[: len(values)],
            "step": steps[: len(values)],
            "critic_sharpness": values,
            "critic_loss_perturbed": np.ones(len(values)),
            "critic_grad_norm": np.full(len(values), 2.0),
        }
    ).to_csv(run_dir / "sharpness.csv", index=False)
    final = score if score is not None else 10.0 * seed
    returns = np.linspace(0.0, final, n_epochs)
    # the last 3 evaluations plateau at the final score: its headline score equals it
    returns[-3:] = final
    pd.DataFrame(
        {
            "epoch": epochs,
            "step": steps,
            "return_mean": returns,
            "return_std": 1.0,
            "normalized_score": returns / 2,
        }
    ).to_csv(run_dir / "eval.csv", index=False)
    done = status != "running"
    (run_dir / "status.json").write_text(
        json.dumps(
            {
                "status": status,
                "started_at": "2025-01-01T00:00:00",
                "ended_at": None,
                "wall_time_s": 12.5 if done else None,
                "steps_done": 10 * n_epochs if done else 20,
                "n_steps": 10 * n_epochs,
                "epochs_done": n_epochs,
                "error": "boom" if status == "failed" else None,
            }
        )
    )
    return run_dir


def write_sweep(
    root: Path,
    scores: dict[float, list[float]],
    statuses: dict[str, str] | None = None,
    with_json: bool = True,
) -> Path:
    """A sweep over optim.rho with one run per (rho, seed); scores[rho][seed] = final return."""
    statuses = statuses or {}
    runs = []
    for rho, per_seed in scores.items():
        for seed, score in enumerate(per_seed):
            run_id = f"cql_pendulum-medium_sam-rho{rho}_s{seed}"
            write_run(
                root / "runs" / run_id,
                rho=rho,
                seed=seed,
                score=score,
                status=statuses.get(run_id, "completed"),
                sharpness=[1.0, 2.0, rho, rho],
            )
            runs.append(
                {
                    "run_id": run_id,
                    "dir": f"runs/{run_id}",
                    "point": {"optim.rho": rho},
                    "seed": seed,
                }
            )
    if with_json:
        spec = {
            "name": "toy",
            "base_config": "configs/toy.yaml",
            "grid": {"optim.rho": list(scores)},
            "seeds": [0, 1, 2],
            "runs": runs,
        }
        (root / "sweep.json").write_text(json.dumps(spec))
    return root


# --------------------------------------------------------------------------- summary rows
