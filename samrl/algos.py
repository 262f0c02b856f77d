"""The table of per-algorithm facts: names, config classes, networks, nested scalars.

Almost everything is read off d3rlpy's own config dataclasses (`<x>_optim_factory` fields);
the table below holds only what cannot be derived. A new algorithm costs one row at most.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import d3rlpy.algos
from d3rlpy.base import LearnableBase, LearnableConfig, register_learnable
from d3rlpy.dataset import ReplayBuffer
from d3rlpy.logging import NoopAdapterFactory
from d3rlpy.serializable_config import CONFIG_STORAGE

from samrl.combo import COMBOConfig
from samrl.errors import ConfigError, unknown_name
from samrl.networks import canonical_network, network_name
from samrl.quiet import import_gym_quietly
from samrl.riql import RIQLConfig
from samrl.sam.factory import register_factory

#: samrl's own algorithms: d3rlpy configs like any other, whose algorithms may inherit
#: samrl.run.hooks.TrainingHooks (docs/extending.md). `register()`, `samrl algos` and the
#: resolver read this list; a new algorithm is one entry here.
OWN_ALGORITHMS: tuple[type[LearnableConfig], ...] = (COMBOConfig, RIQLConfig)

# Scalars stepped inside another network's loss; they always use the base optimizer.
SCALAR_OPTIMIZERS = ("temp", "alpha")


@dataclasses.dataclass(frozen=True)
class AlgoFacts:
    name: str
    config_class: type[LearnableConfig]
    networks: dict[str, str]  # network name -> config field of its optimizer factory
    scalars: tuple[str, ...]  # nested scalar optimizers present (temp, alpha)
    discrete: bool
    transformer: bool
    # networks whose optimizer d3rlpy builds from another network's factory: name -> owner
    shares_factory: dict[str, str] = dataclasses.field(default_factory=dict)
    # what the algorithm itself reads from d3rlpy's replay buffer (whose next observations
    # are derived from the next row), said as "<name> <this>"; None: only samrl's sampler
    buffer_transitions: str | None = None

    def canonical_network(self, name: object) -> object:
        """A network name as a user may write it (`loss`, the old name of a single network,
        included) -> its name in `networks`; anything else unchanged."""
        return canonical_network(name, self.name)


# What d3rlpy 2.8.1 does that its config does not say.
EXCEPTIONS: dict[str, dict[str, object]] = {
    # PLAS builds its VAE optimizer from critic_optim_factory; imitator_optim_factory is unused.
    "plas": {"shares_factory": {"imitator": "critic"}},
    "plas_with_perturbation": {"shares_factory": {"imitator": "critic"}},
    "combo": {"buffer_transitions": "trains its dynamics model on d3rlpy's replay buffer"},
}

NOT_TRAINABLE = {"random_policy", "discrete_random_policy"}


def _derive(config_class: type[LearnableConfig]) -> AlgoFacts:
    name = config_class.get_type()
    networks: dict[str, str] = {}
    scalars: list[str] = []
    for field in dataclasses.fields(config_class):
        if not field.name.endswith("optim_factory"):
            continue
        net = network_name(field.name, name)
        if net in SCALAR_OPTIMIZERS:
            scalars.append(net)
        else:
            networks[net] = field.name
    module = config_class.__module__
    facts = AlgoFacts(
        name=name,
        config_class=config_class,
        networks=networks,
        scalars=tuple(scalars),
        discrete=name.startswith("discrete_") or name in {"dqn", "double_dqn", "nfq"},
        transformer=".transformer." in module,
    )
    extra = EXCEPTIONS.get(name)
    return dataclasses.replace(facts, **extra) if extra else facts  # type: ignore[arg-type]


@cache
def algorithm_table() -> dict[str, AlgoFacts]:
    table: dict[str, AlgoFacts] = {}
    for attr in dir(d3rlpy.algos):
        cls = getattr(d3rlpy.algos, attr)
        if (
            isinstance(cls, type)
            and issubclass(cls, LearnableConfig)
            and dataclasses.is_dataclass(cls)
            and cls.__name__ not in {"LearnableConfig", "TransformerConfig"}
        ):
            try:
                name = cls.get_type()
            except NotImplementedError:
                continue
            if name not in NOT_TRAINABLE:
                table[name] = _derive(cls)
    for config_class in OWN_ALGORITHMS:
        table[config_class.get_type()] = _derive(config_class)
    return table


_registered = False


def register() -> None:
    """Register samrl's SAM optimizer factory and its own algorithms with d3rlpy, so
    `d3rlpy.load_learnable` can rebuild what samrl trained; gym's notice is kept off stderr.
    Idempotent (`samrl.register` is this)."""
    global _registered
    if _registered:
        return
    import_gym_quietly()
    register_factory()
    known = CONFIG_STORAGE[LearnableConfig].config_list
    for config_class in OWN_ALGORITHMS:
        if config_class.get_type() not in known:
            register_learnable(config_class)
    _registered = True


def algo_facts(name: str, key: str = "algo.name") -> AlgoFacts:
    table = algorithm_table()
    if name not in table:
        raise ConfigError(unknown_name("algorithm", name, table), key=key)
    return table[name]


def build_for_training(algo: LearnableBase, dataset: ReplayBuffer) -> None:
    """Build the algorithm through d3rlpy's own fit path with zero steps.

    Unlike build_with_dataset this also runs what each algorithm's fit does before training
    (scalers, PRDC's nearest-neighbour index), and it writes no log files.
    """
    algo.fit(
        dataset,
        n_steps=0,
        n_steps_per_epoch=1,
        logger_adapter=NoopAdapterFactory(),
        show_progress=False,
    )
