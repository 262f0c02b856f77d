"""The checks that relate several config keys or sections (each key's own check is its rule,
`samrl.config.rules`, named by its declaration): the algorithm against the networks named,
the dataset and its corruption, the probe and optimizer settings, and d3rlpy's own config.

Each is asked of the owner: `samrl.algos` (networks), `samrl.data` (datasets),
`samrl.config.build` (d3rlpy keyword arguments, which builds the optimizer factories; samrl.sam
checks the SAM variant's parameters there). `checked` runs them in order, on sections whose
keys have each passed their own rule, and returns the sections with what one key fills in for
another (a `run` seed, the probed networks, the attacker's defaults).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from samrl.config.rules import RUN_SEED
from samrl.config.sections import (
    SECTIONS,
    AlgoSection,
    AnalysisSection,
    AttackerSection,
    DatasetSection,
    OptimSection,
    Section,
    TrainSection,
)
from samrl.errors import DatasetError
from samrl.sam.names import check_batch_size  # msam: m must divide it
from samrl.validate import Checker


def checked(c: Checker, parts: dict[str, Section], *, check_dataset: bool) -> dict[str, Any]:
    """The top-level sections (SECTIONS' names) checked against each other and completed;
    `check_dataset`: the dataset must exist (or be downloadable) and suit the algorithm."""
    # samrl.algos, samrl.config.build load d3rlpy and torch: imported when a config is resolved
    from samrl.algos import algo_facts
    from samrl.config.build import optimizer_factories

    algo, dataset, optim, train, output, analysis = (parts[s] for s in SECTIONS)
    facts = algo_facts(algo.name)
    _epochs(c, train)
    dataset = _corruption(c, _tie_seeds(dataset, train.seed), facts)
    if check_dataset:
        _dataset_exists(c, dataset, facts)
    optim = _optim_networks(c, optim, facts)
    factories = c.rebased(lambda: optimizer_factories(optim, facts, None))
    _algo_params(c, facts, algo, dataset, optim, train, factories)
    hessian = analysis.hessian
    if hessian is not None:
        # each network's Hessian on its own: no need to list networks sharing a factory together
        nets = networks(c, hessian.networks, facts, "analysis.hessian.networks", alone=True)
        analysis = AnalysisSection(dataclasses.replace(hessian, networks=nets))
    _corruption_paths(c, facts, dataset, analysis)
    sections = (algo, dataset, optim, train, output, analysis)
    return dict(zip(SECTIONS, sections, strict=True))


def _epochs(c: Checker, train: TrainSection) -> None:
    if train.n_steps_per_epoch > train.n_steps:
        raise c.fail(
            "train.n_steps_per_epoch",
            f"must be <= train.n_steps ({train.n_steps}), got {train.n_steps_per_epoch}",
        )


def _tie_seeds(dataset: DatasetSection, seed: int) -> DatasetSection:
    """`run` (RUN_SEED) becomes the run's train.seed; the corruption's seed defaults to the
    dataset's."""

    def tied(value: Any) -> Any:
        return seed if value == RUN_SEED else value

    cor = dataset.corruption
    data_seed = tied(dataset.seed)
    if cor is not None:
        cor = dataclasses.replace(cor, seed=data_seed if cor.seed is None else tied(cor.seed))
    return dataclasses.replace(dataset, seed=data_seed, corruption=cor)


def _corruption(c: Checker, dataset: DatasetSection, facts: Any) -> DatasetSection:
    """dataset.corruption against the algorithm's actions, and its attacker (RIQL's protocol:
    samrl/data/corruption.py owns its meaning)."""
    # samrl.data loads torch and d3rlpy (and imports samrl.config back): imported when used
    from samrl.data.corruption import needs_attacker

    cor = dataset.corruption
    if cor is None:
        return dataset
    if facts.discrete and "actions" in cor.fields:
        raise c.fail(
            "dataset.corruption.fields",
            f"'{facts.name}' trains on discrete actions, which cannot be corrupted "
            "(RIQL's noise is in units of a continuous action's std)",
        )
    adversarial = needs_attacker(cor.mode, cor.fields)
    if cor.attacker is not None and not adversarial:
        raise c.fail(
            "dataset.corruption.attacker",
            "only adversarial corruption of observations, actions or next_observations "
            "uses an attacker",
        )
    if adversarial:
        if facts.discrete:
            raise c.fail(
                "dataset.corruption.mode",
                "adversarial corruption needs an attacker with continuous actions "
                "(a d3rlpy SAC or TD3 ensemble); this dataset's actions are discrete",
            )
        if cor.attacker is None:
            cor = dataclasses.replace(cor, attacker=AttackerSection())
    return dataclasses.replace(dataset, corruption=cor)


def _corruption_paths(
    c: Checker, facts: Any, dataset: DatasetSection, analysis: AnalysisSection
) -> None:
    """Corrupted observations or next observations keep next observations in an array of
    their own, which only samrl's sampler serves; what reads transitions from d3rlpy's replay
    buffer instead (COMBO's dynamics model, the Hessian's batches) would see next observations
    derived from the next row (corrupted observations, or clean where they are corrupted)."""
    cor = dataset.corruption
    if cor is None or not {"observations", "next_observations"} & set(cor.fields):
        return
    if facts.buffer_transitions is not None:
        raise c.fail(
            "dataset.corruption.fields",
            f"{facts.name} {facts.buffer_transitions}, which derives next "
            "observations from the next row; corrupted observations or next_observations are "
            "not supported with it",
        )
    if analysis.hessian is not None:
        raise c.fail(
            "analysis.hessian",
            "Hessian batches come from d3rlpy's replay buffer, which derives next observations "
            "from the next row; not supported with corrupted observations or next_observations",
        )


def _dataset_exists(c: Checker, ds: DatasetSection, facts: Any) -> None:
    # samrl.data loads torch and d3rlpy (and imports samrl.config back): imported when used
    from samrl.data import describe_dataset
    from samrl.data.sources import check_available

    try:
        info = describe_dataset(ds.name)
        # d4rl:/d3rlpy: on disk, or downloadable now (they are fetched when training starts)
        check_available(ds.name)
    except DatasetError as exc:
        raise c.fail("dataset.name", str(exc)) from None
    if info.kind == "builtin":
        _generated(c, ds)
    if info.discrete != facts.discrete:
        kind = "discrete" if facts.discrete else "continuous"
        other = "discrete" if info.discrete else "continuous"
        raise c.fail(
            "algo.name",
            f"'{facts.name}' is a {kind}-action algorithm but dataset "
            f"'{ds.name}' has {other} actions",
        )


def _generated(c: Checker, ds: DatasetSection) -> None:
    """MuJoCo built-ins that need SAC trained here (hours) are an explicit `samrl data make`
    step; those rolled out from samrl's shipped policies, or from an untrained one (random),
    are generated on first use (minutes)."""
    # samrl.data loads torch and d3rlpy (and imports samrl.config back): imported when used
    from samrl.data.builtin import BUILTINS, cache_path, needs_sac_training, sac_training_needed

    builtin = BUILTINS[ds.name]
    size = ds.size or builtin.default_size
    if needs_sac_training(builtin) and not cache_path(builtin, size, ds.seed).exists():
        raise c.fail("dataset.name", sac_training_needed(builtin, size, ds.seed))


def _optim_networks(c: Checker, optim: OptimSection, facts: Any) -> OptimSection:
    """optim's networks, the probe's and the schedulers' as the algorithm names them."""
    nets = networks(c, optim.networks, facts, "optim.networks")
    probe = optim.probe
    if probe is not None:
        # Beside SAM too: sharpness at one fixed radius makes every run of a rho sweep
        # comparable (columns <net>_rho<r>_sharpness).
        probed = probe.networks
        if probed is None and not optim.sharpness_aware:
            probed = list(nets)  # Adam runs: optim.networks, as before
        probed = networks(c, probed, facts, "optim.probe.networks")
        probe = dataclasses.replace(probe, networks=probed)
    schedulers = _lr_schedulers(c, optim.lr_scheduler, facts)
    return dataclasses.replace(optim, networks=nets, probe=probe, lr_scheduler=schedulers)


def _lr_schedulers(c: Checker, given: dict[str, Any] | None, facts: Any) -> dict[str, Any] | None:
    """optim.lr_scheduler under the networks' own names (`loss`: a single network's old
    name), one scheduler for networks whose optimizers share a factory."""
    if given is None:
        return None
    schedulers: dict[str, Any] = {}
    for name, spec in given.items():
        key = f"optim.lr_scheduler.{name}"
        net = facts.canonical_network(name)
        c.choice(net, key, facts.networks, f"network for {facts.name}")
        if net in schedulers:
            raise c.fail(key, f"names {net} a second time (loss is its old name)")
        schedulers[net] = copy.deepcopy(spec)
    # d3rlpy builds some optimizers from another network's factory (PLAS's imitator from the
    # critic's): those two train under one scheduler, so they must be given the same one.
    for net, owner in facts.shares_factory.items():
        if schedulers.get(net) != schedulers.get(owner):
            raise c.fail(
                f"optim.lr_scheduler.{net if net in schedulers else owner}",
                f"in {facts.name} the {net} optimizer is built from the {owner}'s factory "
                "(d3rlpy 2.8.1); give both the same scheduler",
            )
    return schedulers


def networks(
    c: Checker, value: list[str] | None, facts: Any, key: str, *, alone: bool = False
) -> tuple[str, ...]:
    """The algorithm's networks named in `value` (a list that passed `rules.network_list`;
    nothing: all of them), without repeats; a network whose optimizer is built from another's
    factory only together with that one (unless `alone`: a measurement, not an optimizer)."""
    if value is None:
        return tuple(facts.networks)
    value = [facts.canonical_network(net) for net in value]  # `loss`: a single net's old name
    for i, net in enumerate(value):
        if net in facts.scalars:
            raise c.fail(
                f"{key}[{i}]",
                f"'{net}' is a scalar optimized inside another loss; it always uses the base "
                "optimizer, not SAM",
            )
        c.choice(net, f"{key}[{i}]", facts.networks, f"network for {facts.name}")
    names = tuple(dict.fromkeys(value))
    for net, owner in () if alone else facts.shares_factory.items():
        if (net in names) != (owner in names):
            raise c.fail(
                key,
                f"in {facts.name} the {net} optimizer is built "
                f"from the {owner}'s factory (d3rlpy 2.8.1); list both or neither",
            )
    return names


def _algo_params(
    c: Checker,
    facts: Any,
    algo: AlgoSection,
    dataset: DatasetSection,
    optim: OptimSection,
    train: TrainSection,
    factories: dict[str, Any],
) -> None:
    """algo.params as d3rlpy takes them: its <Algo>Config is built (and dropped: the run
    builds its own) with the factories optim made, and checked against the dataset, the
    device and the SAM variant's batch-size rules."""
    # samrl.config.build loads torch and d3rlpy: imported when a config is resolved
    from samrl.config.build import algo_config

    config = c.rebased(lambda: algo_config(facts, algo.params, optim, factories))
    batch_size = getattr(config, "batch_size", None)
    if batch_size and optim.sharpness_aware:
        values = {"name": optim.name, **optim.variant_params}
        c.rebased(lambda: check_batch_size(values, batch_size))
    _max_timestep(c, config, dataset.name)
    uses_engine = optim.sharpness_aware or optim.probe is not None
    if getattr(config, "compile_graph", False) and "cuda" in train.device and uses_engine:
        raise c.fail(
            "algo.params.compile_graph",
            "compile_graph=True on CUDA is not supported "
            "with SAM or a sharpness probe (unverified on GPU); set it to false",
        )


def _max_timestep(c: Checker, config: Any, dataset: str) -> None:
    """Decision transformers embed the timestep: episodes longer than max_timestep crash them."""
    max_timestep = getattr(config, "max_timestep", None)
    if max_timestep is None:
        return
    # gymnasium and samrl.data (torch, d3rlpy) load when a config is resolved, not with it
    import gymnasium

    from samrl.data import describe_dataset

    try:
        env_id = describe_dataset(dataset).env_id
        horizon = gymnasium.spec(env_id).max_episode_steps if env_id else None
    except (DatasetError, gymnasium.error.Error):
        return
    if horizon is not None and max_timestep < horizon:
        raise c.fail(
            "algo.params.max_timestep",
            f"must be >= the episode length of {env_id} ({horizon}), got {max_timestep}",
        )
