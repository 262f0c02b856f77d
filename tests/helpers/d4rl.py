"""Small d4rl-format HDF5 files of the MuJoCo tasks' shapes (random numbers)."""

from __future__ import annotations

import pathlib

import h5py
import numpy as np

DIMS = {"hopper": (11, 3), "halfcheetah": (17, 6), "walker2d": (17, 6)}


def write_d4rl_file(path: pathlib.Path, obs: int, act: int, n: int = 600) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["observations"] = rng.normal(size=(n, obs)).astype(np.float32)
        f["next_observations"] = rng.normal(size=(n, obs)).astype(np.float32)
        f["actions"] = rng.uniform(-1, 1, size=(n, act)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        timeouts = np.zeros(n, bool)
        timeouts[99::100] = True
        f["timeouts"] = timeouts
