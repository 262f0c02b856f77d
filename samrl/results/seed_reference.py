"""The seed experiment's numbers: the one published SAM-on-offline-RL result with code.

Source: the example notebook of the d3rlpy 1.x fork samrl descends from (SAM put into d3rlpy's
update step), as quoted in samrl issue 20: d3rlpy 1.x, d3rlpy's pendulum replay dataset
(`d3rlpy.datasets.get_pendulum("replay")`), 50 epochs, SAM rho = 0.05 over Adam, one seed, one
evaluation call. Values are returns (higher is better), not normalized scores.

Keys are the optimizer choice per network in the order of NETWORK_ORDER ("SAM/Adam" = SAM on
the actor, Adam on the critic). Cells the notebook did not report are absent (blank in tables):
for BCQ it reported all-Adam and its best choice only, for BEAR all-Adam, its best and all-SAM.
"""

from __future__ import annotations

SOURCE = (
    "d3rlpy 1.x fork notebook (quoted in samrl issue 20): d3rlpy's pendulum replay data, "
    "50 epochs, SAM rho 0.05 over Adam, one seed; returns"
)
#: The rho of every SAM cell of the seed experiment.
RHO = 0.05
#: Networks named in an optimizer choice, in the order the choice is written.
NETWORK_ORDER = ("actor", "critic", "imitator")

SEED_RETURNS: dict[str, dict[str, float]] = {
    "ddpg": {"Adam/Adam": -1339, "Adam/SAM": -888, "SAM/Adam": -1331, "SAM/SAM": -1037},
    "sac": {"Adam/Adam": -1336, "Adam/SAM": -1351, "SAM/Adam": -1045, "SAM/SAM": -1086},
    "td3": {"Adam/Adam": -638, "Adam/SAM": -1257, "SAM/Adam": -854, "SAM/SAM": -1277},
    "cql": {"Adam/Adam": -765, "Adam/SAM": -1337, "SAM/Adam": -677, "SAM/SAM": -1344},
    "awac": {"Adam/Adam": -731, "Adam/SAM": -1027, "SAM/Adam": -958, "SAM/SAM": -1135},
    "iql": {"Adam/Adam": -959, "Adam/SAM": -1258, "SAM/Adam": -955, "SAM/SAM": -970},
    "bcq": {"Adam/Adam/Adam": -660, "Adam/Adam/SAM": -629},
    "bear": {"Adam/Adam/Adam": -816, "SAM/SAM/Adam": -595, "SAM/SAM/SAM": -1317},
}


#: The data the seed experiment ran on: only a row on these data is compared with it (a seed
#: table of another task, e.g. `make mujoco`'s, has no seed numbers beside it).
SEED_DATASET = "pendulum-replay"


def seed_reported(algo: str, dataset: str) -> dict[str, float]:
    """The seed's returns of `algo` per optimizer choice on `dataset` ({} on other data)."""
    return dict(SEED_RETURNS.get(algo, {})) if dataset == SEED_DATASET else {}


def seed_return(algo: str, choice: str, dataset: str) -> float | None:
    """The seed's one-seed return of `algo` with optimizer `choice` on `dataset`; None when
    not reported (always on data other than SEED_DATASET)."""
    value = seed_reported(algo, dataset).get(choice)
    return None if value is None else float(value)
