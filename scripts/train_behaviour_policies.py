"""Trains the SAC behaviour policies of the MuJoCo datasets (D4RL's recipe), resumably.

    python scripts/train_behaviour_policies.py hopper halfcheetah walker2d --steps 100000

Each training writes its state after every checkpoint interval into samrl's dataset cache and
continues from there when run again after a kill (samrl.data.mujoco.train_behaviour_policies).
`scripts/export_behaviour_policies.py` then turns the finished policies into the tensors-only
files samrl ships.
"""

from __future__ import annotations

import argparse

from samrl.data import mujoco
from samrl.data.builtin import BUILTINS, dataset_cache_dir


def parse_args(description: str) -> argparse.Namespace:
    """The families, SAC steps and seed of a behaviour-policy training (shared with the export
    script, which must name the same training)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("families", nargs="+", choices=["hopper", "halfcheetah", "walker2d"])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    for family in args.families:
        builtin = BUILTINS[f"{family}-medium"]
        policies = mujoco.train_behaviour_policies(
            family,
            builtin.env_id,
            seed=args.seed,
            policy_steps=args.steps,
            cache=dataset_cache_dir(),
            progress=True,
        )
        levels = {k: policies.manifest[k] for k in ("random", "medium", "expert")}
        print(f"{family}: {policies.directory} {levels}")


if __name__ == "__main__":
    main()
