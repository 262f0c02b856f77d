"""samrl's network names: the one table from d3rlpy's optimizer names to the names samrl
reports (`<net>_sharpness`, `optim.networks`, `samrl algos`).

d3rlpy names an optimizer by a stem: the config field `<stem>_optim_factory` and the module field
`<stem>_optim` (critic, actor, imitator, temp, alpha, ...). Single-network algorithms (DQN
family, BC, decision transformers) use a bare `optim_factory` / `optim`; BCQ and BEAR build their
imitator's optimizer as `vae_optim` from `imitator_optim_factory`.
"""

from __future__ import annotations

#: Stems samrl reports under another name; every other stem is its own network name.
RENAMED = {"": "loss", "vae": "imitator"}


def network_name(field: str) -> str:
    """`critic_optim_factory` / `critic_optim` -> `critic`; `optim` -> `loss`; `vae_optim` ->
    `imitator`."""
    stem = field.removesuffix("_factory").removesuffix("optim").removesuffix("_")
    return RENAMED.get(stem, stem)
