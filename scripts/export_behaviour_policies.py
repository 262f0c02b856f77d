"""Exports finished SAC behaviour-policy trainings into the tensors-only files samrl ships.

    python scripts/export_behaviour_policies.py hopper halfcheetah walker2d --steps 100000

Reads each family's training (scripts/train_behaviour_policies.py, same --steps and --seed)
from samrl's dataset cache, writes `samrl/data/policies/<family>_<level>.npz` (the actor only,
read with numpy.load(allow_pickle=False)) for the random, medium and expert levels, and
rewrites `samrl/data/policies/manifest.json`: every file's sha256, the checkpoint each level
came from with its evaluated return, and the training's whole learning curve.
"""

from __future__ import annotations

import json
import platform

import d3rlpy
from train_behaviour_policies import parse_args  # scripts/ beside this file

from samrl.data import actor, mujoco
from samrl.data.builtin import BUILTINS, dataset_cache_dir

LEVELS = ("random", "medium", "expert")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    manifest = actor.shipped_manifest() or {"policies": {}}
    # each family names its own training (seed, steps): a family whose first seed did not learn
    # is trained again with another seed without touching the others
    for stale in ("policy_steps", "seed"):
        manifest.pop(stale, None)
    manifest["trained_with"] = (
        f"d3rlpy {d3rlpy.__version__} SAC (samrl.data.mujoco, generator "
        f"{mujoco.GENERATOR_VERSION}), 1 torch thread, {platform.machine()}"
    )
    actor.SHIPPED_DIR.mkdir(exist_ok=True)
    for family in args.families:
        directory = mujoco.policy_directory(dataset_cache_dir(), family, args.seed, args.steps)
        trained = json.loads((directory / "policies.json").read_text())
        entries = {}
        for level in LEVELS:
            path = actor.SHIPPED_DIR / f"{family}_{level}.npz"
            sha256 = actor.save_actor(mujoco.actor_of(directory / f"{level}.d3"), path)
            chosen = trained[level]
            entries[level] = {
                "file": path.name,
                "sha256": sha256,
                "checkpoint_step": chosen["step"],
                "eval_return": chosen["return"],
            }
        manifest["policies"][family] = {
            **entries,
            "env_id": BUILTINS[f"{family}-medium"].env_id,
            "seed": args.seed,
            "policy_steps": args.steps,
            "learning_curve": [[c["step"], c["return"]] for c in trained["checkpoints"]],
        }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    actor.MANIFEST.write_text(text)
    print(f"wrote {', '.join(args.families)} policies -> {actor.SHIPPED_DIR}")


if __name__ == "__main__":
    main()
