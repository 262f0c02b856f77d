"""Hand-made sweeps over algorithms, datasets and optimizer choices (no training): each run
directory is what train.py writes (helpers.runs.write_run), with the config and final
normalized score a test asks for."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from helpers.runs import write_run


@dataclass
class Point:
    algo: str
    scores: Sequence[float]  # final normalized score per seed (seed = index)
    networks: Sequence[str] | None = None  # None: Adam
    rho: float = 0.05
    dataset: str = "pendulum-replay"
    statuses: Mapping[int, str] = field(default_factory=dict)
    # extra sharpness.csv columns: name -> last epoch's value per seed
    sharpness: Mapping[str, Sequence[float]] = field(default_factory=dict)
    # sharpness_posthoc.csv rows: (net, rho) -> worst case per seed
    posthoc: Mapping[tuple[str, float], Sequence[float]] = field(default_factory=dict)


def point_of(p: Point) -> dict[str, Any]:
    point: dict[str, Any] = {"algo.name": p.algo, "dataset.name": p.dataset}
    if p.networks is None:
        point["optim.name"] = "adam"
    else:
        point["optim.name"] = "sam"
        point["optim.networks"] = list(p.networks)
        point["optim.rho"] = p.rho
    return point


def run_id(p: Point, seed: int) -> str:
    nets = "adam" if p.networks is None else "sam-" + "+".join(p.networks) + f"-rho{p.rho}"
    return f"{p.algo}_{p.dataset}_{nets}_s{seed}"


def write_point_sweep(
    root: Path,
    points: Sequence[Point],
    *,
    eval_episodes: int = 10,
    dataset_size: int = 600,
    n_epochs: int = 4,
) -> Path:
    """A sweep directory (sweep.json + runs/) with one run per point and seed."""
    runs = []
    for p in points:
        point = point_of(p)
        for seed, score in enumerate(p.scores):
            rid = run_id(p, seed)
            run_dir = write_run(
                root / "runs" / rid,
                rho=p.rho,
                seed=seed,
                score=2.0 * score,  # write_run's normalized score is half the return
                status=p.statuses.get(seed, "completed"),
                optim=point["optim.name"],
                sweep_point=point,
                n_epochs=n_epochs,
            )
            config = yaml.safe_load((run_dir / "config.yaml").read_text())
            config["algo"]["name"] = p.algo
            config["dataset"] = {"name": p.dataset, "size": dataset_size, "seed": 0}
            config["optim"]["networks"] = list(p.networks or ["actor", "critic"])
            config["train"]["eval_episodes"] = eval_episodes
            (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
            if p.sharpness:
                path = run_dir / "sharpness.csv"
                frame = pd.read_csv(path)
                for column, values in p.sharpness.items():
                    # the value asked for at the last epoch, others below it (not a mean)
                    frame[column] = values[seed] + 0.37 * (frame["epoch"] - frame["epoch"].max())
                frame.to_csv(path, index=False)
            if p.posthoc:
                rows = [
                    {"step": 10 * n_epochs, "net": net, "rho": rho, "worst_case": values[seed]}
                    for (net, rho), values in p.posthoc.items()
                ]
                pd.DataFrame(rows).to_csv(run_dir / "sharpness_posthoc.csv", index=False)
            runs.append({"run_id": rid, "dir": f"runs/{rid}", "point": point, "seed": seed})
    grid_keys = list(dict.fromkeys(k for r in runs for k in r["point"]))
    spec = {
        "name": root.name,
        "base_config": "configs/toy.yaml",
        "grid": {k: sorted({json.dumps(r["point"].get(k)) for r in runs}) for k in grid_keys},
        "seeds": sorted({r["seed"] for r in runs}),
        "runs": runs,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text(json.dumps(spec))
    return root


def scores_of(rng: np.random.Generator, centre: float, n: int = 5, spread: float = 3.0) -> list:
    return list(np.round(centre + spread * rng.standard_normal(n), 3))
