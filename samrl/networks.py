"""samrl's network names: the one table from d3rlpy's optimizer names to the names samrl
reports (`<net>_sharpness`, `optim.networks`, `samrl algos`).

d3rlpy names an optimizer by a stem: the config field `<stem>_optim_factory` and the module field
`<stem>_optim` (critic, actor, imitator, temp, alpha, ...). BCQ and BEAR build their imitator's
optimizer as `vae_optim` from `imitator_optim_factory`. Single-network algorithms (DQN family,
BC, decision transformers) use a bare `optim_factory` / `optim`: their network is named per
algorithm, in SINGLE_NETWORK.

samrl used to call every single network `loss` (columns `loss_sharpness`, `loss_loss_perturbed`,
`loss_grad_norm`; `optim.networks: [loss]`). `loss` is still accepted
wherever a network is named (`canonical_network`), and results readers rename old run
directories' columns through `legacy_columns` (docs/run-directory.md has the table).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Stems samrl reports under another name; every other stem is its own network name.
RENAMED = {"vae": "imitator"}

#: The network behind the bare `optim` of each single-optimizer algorithm (d3rlpy 2.8.1).
SINGLE_NETWORK = {
    "dqn": "q",
    "double_dqn": "q",
    "nfq": "q",
    "discrete_cql": "q",
    # one optimizer steps the Q-function and the behaviour-cloning head (TD + imitation loss)
    "discrete_bcq": "q_imitator",
    "bc": "policy",
    "discrete_bc": "policy",
    "decision_transformer": "transformer",
    "discrete_decision_transformer": "transformer",
}
#: The single network of an algorithm the table does not know (an algorithm outside d3rlpy).
OTHER_SINGLE_NETWORK = "net"
#: The old name of every single network: an alias in configs and options, renamed in old runs.
LEGACY_SINGLE_NETWORK = "loss"

#: How plots and reports title each network.
TITLES = {
    "critic": "Critic",
    "actor": "Actor",
    "imitator": "Imitator",
    "dynamics": "Dynamics model",
    "q": "Q-function",
    "q_imitator": "Q-function + imitator",
    "policy": "Policy",
    "transformer": "Transformer",
}


def network_name(field: str, algo: str) -> str:
    """The network of optimizer `field` in algorithm `algo` (d3rlpy's `get_type()`):
    `critic_optim_factory` / `critic_optim` -> `critic`; `vae_optim` -> `imitator`;
    `optim` -> `q` in DQN, `policy` in BC (SINGLE_NETWORK)."""
    stem = field.removesuffix("_factory").removesuffix("optim").removesuffix("_")
    if not stem:
        return SINGLE_NETWORK.get(algo, OTHER_SINGLE_NETWORK)
    return RENAMED.get(stem, stem)


def canonical_network(name: object, algo: str) -> object:
    """`name` with the legacy alias resolved: `loss` -> the algorithm's single network (in
    single-network algorithms; elsewhere `loss` stays, and is reported as unknown)."""
    if name == LEGACY_SINGLE_NETWORK and algo in SINGLE_NETWORK:
        return SINGLE_NETWORK[algo]
    return name


def is_legacy_column(column: str) -> bool:
    """Whether a network-prefixed column may carry the old single-network name."""
    return column.startswith(LEGACY_SINGLE_NETWORK + "_")


def legacy_columns(columns: Iterable[str], algo: str) -> dict[str, str]:
    """Old -> new name of each network-prefixed column (`loss_sharpness` -> `q_sharpness` in a
    DQN run) written before single networks were named; {} when there is none."""
    new = SINGLE_NETWORK.get(algo)
    if new is None:
        return {}
    return {c: new + c.removeprefix(LEGACY_SINGLE_NETWORK) for c in columns if is_legacy_column(c)}
