"""Write configs/d4rl/ (the D4RL presets) and configs/sweeps/d4rl/ from one table.

    python scripts/d4rl_presets.py          # (re)write the files
    python scripts/d4rl_presets.py --check  # exit 1 if a file differs from what this writes

Every preset is one algorithm (CQL, IQL, TD3+BC, BC) on one D4RL -v2 dataset (hopper,
halfcheetah, walker2d x medium, medium-replay, medium-expert) with the hyperparameters of
d3rlpy's reproduction scripts, in two variants: SAM (rho 0.05 on every network) and Adam with a
sharpness probe at the same radius (the Adam trajectory is unchanged, its sharpness measured).
Hand edits are overwritten: change this table instead.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import yaml
from generated_files import sync

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRESETS = ROOT / "configs" / "d4rl"
SWEEPS = ROOT / "configs" / "sweeps" / "d4rl"
ENVS = ("hopper", "halfcheetah", "walker2d")
LEVELS = ("medium", "medium-replay", "medium-expert")
DATASETS = [f"d4rl:{env}-{level}-v2" for env in ENVS for level in LEVELS]
RHO = 0.05
SEEDS = "0-4"
N_STEPS = 500_000  # every d3rlpy reproduction script trains 500k steps

# dataset -> the sha256 of its file, pinning it (`dataset.sha256`: a different file is refused).
# Only hashes measured on the real files belong here (`samrl data info d4rl:<name>` prints
# one); none was measured where samrl is developed (no network), so no preset is pinned yet.
SHA256: dict[str, str] = {}

D3RLPY = "https://github.com/takuseno/d3rlpy/blob"
ENCODER_256 = {"type": "vector", "params": {"hidden_units": [256, 256]}}

# algorithm -> (samrl algo name, d3rlpy config parameters, source comment lines)
ALGORITHMS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "cql": (
        "cql",
        {
            "actor_learning_rate": 1e-4,
            "critic_learning_rate": 3e-4,
            "temp_learning_rate": 1e-4,
            "alpha_learning_rate": 3e-4,
            "initial_alpha": 2.718281828459045,  # math.e
            "actor_encoder_factory": ENCODER_256,
            "critic_encoder_factory": ENCODER_256,
            "batch_size": 256,
            "n_action_samples": 10,
            "alpha_threshold": 10.0,
            "conservative_weight": 5.0,
        },
        [
            f"d3rlpy reproductions/offline/cql.py ({D3RLPY}/"
            "52097073643bdbc4f8f7525a5edc682b3932bcf8/reproductions/offline/cql.py):",
            "actor lr 1e-4, critic lr 3e-4, temp lr 1e-4, alpha lr 3e-4, initial alpha e,",
            "256x256 actor and critic, batch 256, 10 action samples, alpha threshold 10,",
            "conservative weight 5 (the script uses 10 only for medium-v0), 500k steps.",
        ],
    ),
    "iql": (
        "iql",
        {
            "actor_learning_rate": 3e-4,
            "critic_learning_rate": 3e-4,
            "batch_size": 256,
            "weight_temp": 3.0,
            "max_weight": 100.0,
            "expectile": 0.7,
            "reward_scaler": {"type": "return", "params": {"multiplier": 1000.0}},
        },
        [
            f"d3rlpy reproductions/offline/iql.py ({D3RLPY}/"
            "d324094fd0cd3bcc5b4a9f7ba0bf50d0a70b0d73/reproductions/offline/iql.py):",
            "actor and critic lr 3e-4, batch 256, weight temperature 3, max weight 100,",
            "expectile 0.7, ReturnBasedRewardScaler(multiplier=1000), the actor's learning",
            "rate annealed by a cosine (CosineAnnealingLRFactory(T_max=500000)), 500k steps.",
        ],
    ),
    "td3_plus_bc": (
        "td3_plus_bc",
        {
            "actor_learning_rate": 3e-4,
            "critic_learning_rate": 3e-4,
            "batch_size": 256,
            "target_smoothing_sigma": 0.2,
            "target_smoothing_clip": 0.5,
            "alpha": 2.5,
            "update_actor_interval": 2,
            "observation_scaler": {"type": "standard"},
        },
        [
            f"d3rlpy reproductions/offline/td3_plus_bc.py ({D3RLPY}/"
            "9c6b6e9d67c2e912593f2c2d3b35b178563c1b54/reproductions/offline/td3_plus_bc.py):",
            "actor and critic lr 3e-4, batch 256, target smoothing sigma 0.2 / clip 0.5,",
            "alpha 2.5, actor updated every 2 steps, standardized observations, 500k steps.",
        ],
    ),
    "bc": (
        "bc",
        {"learning_rate": 1e-3, "batch_size": 100, "encoder_factory": ENCODER_256},
        [
            "d3rlpy ships no BC reproduction script: d3rlpy 2.8.1's BCConfig defaults",
            "(lr 1e-3, batch 100, deterministic policy, 256x256 MLP), 500k steps like the",
            "other presets.",
        ],
    ),
}

# algorithm -> optim.lr_scheduler, where the reproduction script schedules a learning rate
LR_SCHEDULERS: dict[str, dict[str, Any]] = {
    "iql": {"actor": {"type": "cosine_annealing", "params": {"T_max": N_STEPS}}},
}

VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "sam": ({"name": "sam", "rho": RHO}, f"SAM (rho {RHO}) on every network"),
    "adam_probe": (
        {"name": "adam", "probe": {"rho": RHO, "every": 10}},
        f"Adam, sharpness probed at rho {RHO} every 10 steps (training unchanged)",
    ),
}


def preset_name(algo: str, variant: str, dataset: str) -> str:
    return f"{algo}_{variant}_{dataset.removeprefix('d4rl:')}"


def preset(algo: str, variant: str, dataset: str) -> tuple[str, dict[str, Any]]:
    name, params, source = ALGORITHMS[algo]
    optim, what = VARIANTS[variant]
    header = [
        f"D4RL preset: {algo} on {dataset}, {what}.",
        "Written by scripts/d4rl_presets.py (edit the table there, not this file).",
        *source,
        "Data: downloaded on first use into $D4RL_DATASET_DIR (samrl data download); evaluated",
        "in the gymnasium v5 env (D4RL collected it in v2/mujoco-py), D4RL's normalized score.",
    ]
    config = {
        "name": preset_name(algo, variant, dataset),
        "algo": {"name": name, "params": params},
        "dataset": {"name": dataset, **({"sha256": SHA256[dataset]} if dataset in SHA256 else {})},
        "optim": {
            **optim,
            **({"lr_scheduler": LR_SCHEDULERS[algo]} if algo in LR_SCHEDULERS else {}),
        },
        "train": {
            "n_steps": N_STEPS,
            "n_steps_per_epoch": 10_000,
            "seed": 0,
            "device": "auto",
            "eval_episodes": 10,
        },
        "output": {"dir": "runs/d4rl"},
    }
    return "".join(f"# {line}\n" for line in header), config


def sweep(algo: str, variant: str) -> tuple[str, dict[str, Any]]:
    base = preset_name(algo, variant, DATASETS[0])
    header = [
        f"D4RL study, {algo} / {VARIANTS[variant][1]}: 9 datasets x 5 seeds = 45 runs of",
        f"{N_STEPS} steps (make reproduce-d4rl runs all 8 of these files: 360 runs).",
        "Written by scripts/d4rl_presets.py. Each dataset is downloaded once by the driver.",
    ]
    spec = {
        "name": f"d4rl_{algo}_{variant}",
        "base": f"../../d4rl/{base}.yaml",
        "grid": {"dataset.name": list(DATASETS)},
        "seeds": SEEDS,
        "jobs": 1,
        "out": "runs/sweeps",
        "launcher": {
            "type": "slurm",
            "timeout_min": 720,
            "cpus_per_task": 4,
            "gpus_per_node": 1,
            "array_parallelism": 45,
        },
    }
    return "".join(f"# {line}\n" for line in header), spec


def files() -> dict[pathlib.Path, str]:
    out = {}
    for algo in ALGORITHMS:
        for variant in VARIANTS:
            for dataset in DATASETS:
                header, config = preset(algo, variant, dataset)
                path = PRESETS / f"{preset_name(algo, variant, dataset)}.yaml"
                out[path] = header + yaml.safe_dump(config, sort_keys=False)
            header, spec = sweep(algo, variant)
            out[SWEEPS / f"{algo}_{variant}.yaml"] = header + yaml.safe_dump(spec, sort_keys=False)
    return out


def main() -> int:
    return sync(__doc__.splitlines()[0], files, [PRESETS, SWEEPS], ROOT)


if __name__ == "__main__":
    sys.exit(main())
