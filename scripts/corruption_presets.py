"""Write configs/corruption/ (IQL, IQL+SAM, RIQL, RIQL+SAM on corrupted D4RL data) from one table.

    python scripts/corruption_presets.py          # (re)write the files
    python scripts/corruption_presets.py --check  # exit 1 if a file differs from what this writes

The setting of the one published claim that SAM helps offline RL (arXiv 2511.17568): IQL and RIQL,
with and without SAM on the value networks (d3rlpy IQL's `critic` optimizer: Q and V), on D4RL
medium-replay data (halfcheetah, walker2d, hopper) with 30% of the transitions corrupted by
RIQL's protocol (Yang et al., ICLR 2024, https://github.com/YangRui2015/RIQL):
random observations, random mixed (all four fields), adversarial observations.
Hand edits are overwritten: change this table instead.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import yaml
from generated_files import sync

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRESETS = ROOT / "configs" / "corruption"
RIQL_REPO = "https://github.com/YangRui2015/RIQL/blob/cc07d81"
TASKS = ("halfcheetah", "walker2d", "hopper")
RATE = 0.3  # RIQL's README: corruption_rate 0.3 by default
SCALE = 1.0  # RIQL's README: corruption_range 1.0 by default (RIQL.py's argparse says 0.3)
RHO = 0.05  # the paper does not give its rho; samrl's default
N_STEPS = 3_000_000  # RIQL.py / IQL.py: 3000 epochs x 1000 updates
ENCODER_256 = {"type": "vector", "params": {"hidden_units": [256, 256]}}

# mode -> (dataset.corruption, RIQL_config.py branch, words)
MODES: dict[str, tuple[dict[str, Any], str, str]] = {
    "random_obs": (
        {"mode": "random", "fields": ["observations"]},
        "random / corrupt_obs",
        "random observations",
    ),
    "random_mixed": (
        {"mode": "random", "fields": ["observations", "actions", "rewards", "next_observations"]},
        # RIQL_config.py's if/elif reaches the observation branch first when corrupt_obs is set
        "random / corrupt_obs",
        "random mixed (observations, actions, rewards, next observations, each alone)",
    ),
    "adversarial_obs": (
        {
            "mode": "adversarial",
            "fields": ["observations"],
            # RIQL attacks with a pretrained 10-critic EDAC (3000 epochs x 1000 updates);
            # samrl trains a d3rlpy SAC with 10 critics on the clean data instead.
            "attacker": {
                "algo": "sac",
                "n_critics": 10,
                "n_steps": 1_000_000,
                "hidden_units": [256, 256],
                "batch_size": 256,
            },
        },
        "adversarial / corrupt_obs",
        "adversarial observations",
    ),
}

# RIQL_config.py (get_config): (sigma, quantile, num_critics) per task and branch, read there
# and checked against the table of samrl issue 21.
RIQL_CONFIG: dict[str, dict[str, tuple[float, float, int]]] = {
    "random / corrupt_obs": {
        "halfcheetah": (0.1, 0.1, 5),
        "walker2d": (0.1, 0.25, 5),
        "hopper": (0.1, 0.25, 3),
    },
    "adversarial / corrupt_obs": {
        "halfcheetah": (0.1, 0.1, 5),
        "walker2d": (1.0, 0.25, 5),
        "hopper": (1.0, 0.25, 5),
    },
}

# Shared by IQL and RIQL: the hyperparameters of RIQL.py / IQL.py (TrainConfig)
COMMON = {
    "actor_learning_rate": 3e-4,
    "critic_learning_rate": 3e-4,
    "batch_size": 256,
    "gamma": 0.99,
    "tau": 0.005,
    "expectile": 0.7,
    "weight_temp": 3.0,
    "max_weight": 100.0,
    "actor_encoder_factory": ENCODER_256,
    "critic_encoder_factory": ENCODER_256,
    "value_encoder_factory": ENCODER_256,
}
SOURCE = [
    f"RIQL.py / IQL.py TrainConfig ({RIQL_REPO}/RIQL.py): lr 3e-4 for every network,",
    "batch 256, discount 0.99, soft target rate 0.005, expectile 0.7, beta 3, exp-advantage",
    "cap 100, 256x256 networks, 3000 epochs x 1000 updates, the actor's lr annealed by a",
    "cosine over 3e6 steps. Differences (samrl/riql/algo.py): d3rlpy IQL's Gaussian actor",
    "(RIQL: deterministic), each critic's loss summed over critics (RIQL: averaged).",
    f"Corruption: rate {RATE} and scale {SCALE}, the defaults RIQL's README documents",
    "(RIQL.py's argparse defaults are 0.3 and 0.1); rewards: U(-30, 30) when random.",
]

VARIANTS = {
    "iql_adam": ("IQL", {"name": "adam"}),
    "iql_sam": ("IQL+SAM", {"name": "sam", "rho": RHO, "networks": ["critic"]}),
    "riql_adam": ("RIQL", {"name": "adam"}),
    "riql_sam": ("RIQL+SAM", {"name": "sam", "rho": RHO, "networks": ["critic"]}),
}


def preset(variant: str, task: str, mode: str) -> tuple[str, dict[str, Any]]:
    words, optim = VARIANTS[variant]
    corruption, branch, what = MODES[mode]
    dataset = f"d4rl:{task}-medium-replay-v2"
    algo = variant.split("_", 1)[0]
    params = dict(COMMON)
    header = [
        f"Corruption preset: {words} on {dataset}, {what}, rate {RATE}, scale {SCALE}.",
        *SOURCE,
    ]
    if algo == "riql":
        sigma, quantile, critics = RIQL_CONFIG[branch][task]
        params.update(
            n_critics=critics,
            quantile=quantile,
            q_loss="huber",
            huber_sigma=sigma,
            normalize_observations=True,
        )
        header += [
            f"RIQL: sigma {sigma}, quantile {quantile}, {critics} critics from RIQL_config.py",
            f"({RIQL_REPO}/RIQL_config.py), branch {branch}, task {task}"
            + (
                " (its if/elif takes the observation branch for mixed corruption);"
                if mode == "random_mixed"
                else ";"
            ),
            "targets clipped to [-100, 1000], observations normalised (RIQL.py).",
        ]
    else:
        params["n_critics"] = 2  # IQL.py's twin Q
        header.append("IQL: twin critics, no observation normalisation (IQL.py normalize=False).")
    if optim["name"] == "sam":
        header.append(
            f"SAM (rho {RHO}; arXiv 2511.17568 does not state its rho) on the critic optimizer "
            "only: Q and V (SAM on the policy was unstable there)."
        )
    header.append("Evaluated in the clean gymnasium v5 env, D4RL's normalized score.")
    header.append(
        "Data seeds `run`: each train.seed draws its own corruption (DESIGN.md section 8)."
    )
    config = {
        "name": f"{variant}_{task}_{mode}",
        "algo": {"name": algo, "params": params},
        # the corruption (and the held-out split) drawn per run seed: CIs include the draw
        "dataset": {
            "name": dataset,
            "seed": "run",
            "corruption": {**corruption, "rate": RATE, "scale": SCALE, "seed": "run"},
        },
        "optim": {
            **optim,
            "lr_scheduler": {
                "actor": {"type": "cosine_annealing", "params": {"T_max": N_STEPS}},
            },
        },
        "train": {
            "n_steps": N_STEPS,
            "n_steps_per_epoch": 10000,  # RIQL evaluates every 10 epochs of 1000 updates
            "seed": 0,
            "device": "auto",
            "eval_episodes": 10,
            "save_interval": 10,
        },
        "output": {"dir": "runs/corruption"},
    }
    return "".join(f"# {line}\n" for line in header), config


def files() -> dict[pathlib.Path, str]:
    out = {}
    for variant in VARIANTS:
        for task in TASKS:
            for mode in MODES:
                header, config = preset(variant, task, mode)
                text = header + yaml.safe_dump(config, sort_keys=False)
                out[PRESETS / f"{config['name']}.yaml"] = text
    return out


def main() -> int:
    return sync(__doc__.splitlines()[0], files, [PRESETS], ROOT)


if __name__ == "__main__":
    sys.exit(main())
