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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="+", choices=["hopper", "halfcheetah", "walker2d"])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
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
