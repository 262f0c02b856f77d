"""What can be downloaded: D4RL's gym-mujoco files and d3rlpy's classic-control datasets.

The D4RL table follows D4RL's own `d4rl/infos.py` (DATASET_URLS, including the loop that adds
the -v1 and -v2 gym-mujoco datasets) so a file samrl downloads has the name and place d4rl itself
would give it ($D4RL_DATASET_DIR, default ~/.d4rl/datasets, file name = last part of the URL),
and a cache filled by d4rl is reused as is.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

from samrl.data.download import download

D4RL_URL_ENV = "SAMRL_D4RL_URL"
D4RL_DIR_ENV = "D4RL_DATASET_DIR"
# D4RL's own host; SAMRL_D4RL_URL replaces this prefix (a lab mirror, or a test server).
D4RL_BASE_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl"
D4RL_FAMILIES = ("hopper", "halfcheetah", "walker2d", "ant")
# The keys every D4RL gym-mujoco file holds (and samrl reads); a download without them is
# rejected.
D4RL_REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")

# v0 (d4rl/infos.py DATASET_URLS): medium-replay was called "mixed" and walker2d's mixed file
# is "walker_mixed"; ant alone has random-expert.
_V0_LEVELS = ("random", "medium", "expert", "medium-replay", "medium-expert")
# v1 and v2 (the loop at the end of d4rl/infos.py).
_V12_LEVELS = ("random", "medium", "expert", "medium-replay", "full-replay", "medium-expert")


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable dataset: its samrl spec, where it lives remotely, its local path."""

    spec: str
    url: str
    path: pathlib.Path
    required_keys: tuple[str, ...]

    def fetch(self, *, progress: bool = True) -> pathlib.Path:
        """The local file, downloaded (resumable, validated) when it is not there yet."""

        return download(
            self.url,
            self.path,
            spec=self.spec,
            required_keys=self.required_keys,
            progress=progress,
        )


def d4rl_dir() -> pathlib.Path:
    """$D4RL_DATASET_DIR or ~/.d4rl/datasets (where d4rl itself keeps its downloads)."""
    env = os.environ.get(D4RL_DIR_ENV)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".d4rl/datasets"


def d4rl_base_url() -> str:
    return (os.environ.get(D4RL_URL_ENV) or D4RL_BASE_URL).rstrip("/")


def _d4rl_paths() -> dict[str, str]:
    """Dataset name -> URL path below the base URL, as in d4rl/infos.py."""
    out: dict[str, str] = {}
    for family in D4RL_FAMILIES:
        levels = (*_V0_LEVELS, "random-expert") if family == "ant" else _V0_LEVELS
        for level in levels:
            stem = f"{family}_{level.replace('-', '_')}"
            if level == "medium-replay":
                stem = f"{'walker' if family == 'walker2d' else family}_mixed"
            out[f"{family}-{level}-v0"] = f"gym_mujoco/{stem}.hdf5"
        for version in ("v1", "v2"):
            for level in _V12_LEVELS:
                stem = f"{family}_{level.replace('-', '_')}-{version}"
                out[f"{family}-{level}-{version}"] = f"gym_mujoco_{version}/{stem}.hdf5"
    return out


D4RL_PATHS: dict[str, str] = _d4rl_paths()


def d4rl_remote(name: str) -> RemoteFile | None:
    """The download of D4RL dataset `name` (e.g. 'hopper-medium-v2'); None if D4RL has none."""
    rel = D4RL_PATHS.get(name)
    if rel is None:
        return None
    return RemoteFile(
        f"d4rl:{name}",
        f"{d4rl_base_url()}/{rel}",
        d4rl_dir() / rel.rsplit("/", 1)[1],
        D4RL_REQUIRED_KEYS,
    )


# ---- d3rlpy's own datasets ----------------------------------------------------------------------


@dataclass(frozen=True)
class D3rlpyDataset:
    """One of d3rlpy.datasets' classic-control datasets (get_cartpole / get_pendulum)."""

    name: str  # samrl's name after 'd3rlpy:'
    family: str  # "cartpole" | "pendulum"
    dataset_type: str  # d3rlpy's dataset_type argument: "replay" | "random"
    url_attr: str  # the URL constant in d3rlpy.datasets
    file_name: str  # the name get_cartpole/get_pendulum store it under (d3rlpy 2.8.1)
    env_id: str
    discrete: bool

    def url(self) -> str:
        import d3rlpy.datasets

        return str(getattr(d3rlpy.datasets, self.url_attr))

    def path(self) -> pathlib.Path:
        """d3rlpy's data directory is relative to the working directory ('d3rlpy_data')."""
        import d3rlpy.datasets

        return pathlib.Path(d3rlpy.datasets.DATA_DIRECTORY) / self.file_name

    def remote(self) -> RemoteFile:
        # d3rlpy's v1 files: the flat arrays d3rlpy.dataset.io.load_v1 reads.
        return RemoteFile(f"d3rlpy:{self.name}", self.url(), self.path(), D4RL_REQUIRED_KEYS)


D3RLPY_DATASETS: dict[str, D3rlpyDataset] = {
    d.name: d
    for d in (
        D3rlpyDataset(
            "cartpole-replay",
            "cartpole",
            "replay",
            "CARTPOLE_URL",
            "cartpole_replay_v1.1.0.h5",
            "CartPole-v1",
            True,
        ),
        D3rlpyDataset(
            "cartpole-random",
            "cartpole",
            "random",
            "CARTPOLE_RANDOM_URL",
            "cartpole_random_v1.1.0.h5",
            "CartPole-v1",
            True,
        ),
        D3rlpyDataset(
            "pendulum-replay",
            "pendulum",
            "replay",
            "PENDULUM_URL",
            "pendulum_replay_v1.1.0.h5",
            "Pendulum-v1",
            False,
        ),
        D3rlpyDataset(
            "pendulum-random",
            "pendulum",
            "random",
            "PENDULUM_RANDOM_URL",
            "pendulum_random_v1.1.0.h5",
            "Pendulum-v1",
            False,
        ),
    )
}
