"""From validated config sections to d3rlpy objects: optimizer factories, algorithm config."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
from d3rlpy.base import LearnableConfig
from d3rlpy.models import (
    DefaultEncoderFactory,
    EncoderFactory,
    SimBaEncoderFactory,
    VectorEncoderFactory,
)
from d3rlpy.optimizers import (
    AdamFactory,
    AdamWFactory,
    LRSchedulerFactory,
    OptimizerFactory,
    RMSpropFactory,
    SGDFactory,
)

from samrl.algos import AlgoFacts
from samrl.config.sections import OptimSection
from samrl.sam.factory import SAMFactory
from samrl.sam.names import OPTIMIZER_NAMES
from samrl.validate import Checker, dataclass_kwargs, field_defaults

BASE_FACTORIES: dict[str, type[OptimizerFactory]] = {
    "adam": AdamFactory,
    "sgd": SGDFactory,
    "adamw": AdamWFactory,
    "rmsprop": RMSpropFactory,
}
# No source here: the config resolver adds the file to every ConfigError raised below.
_CHECK = Checker()


def base_factory(optim: OptimSection, default: OptimizerFactory | None) -> OptimizerFactory:
    """The base optimizer: `optim.base` with `optim.params`, else the algorithm's default;
    tried on a throwaway parameter (`tried`), so a value torch refuses is a config error."""
    if "lr_scheduler_factory" in optim.params:
        raise _CHECK.fail(
            "optim.params.lr_scheduler_factory",
            "learning-rate schedulers are set by network in optim.lr_scheduler",
        )
    if optim.base is None and default is not None:
        kwargs = dataclass_kwargs(_CHECK, type(default), optim.params, "optim.params")
        factory = dataclasses.replace(default, **kwargs)
    else:
        cls = BASE_FACTORIES[optim.base or "adam"]
        kwargs = dataclass_kwargs(_CHECK, cls, optim.params, "optim.params")
        try:
            factory = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise _CHECK.fail("optim.params", str(exc)) from None
    return tried(factory, "optim.params")


def tried(factory: OptimizerFactory, key: str) -> OptimizerFactory:
    """`factory` after two steps of an optimizer it makes for one throwaway parameter: what
    torch raises on a value it cannot use (eps < 0, betas of one number, T_max 0) becomes a
    config error naming `key`, not a failed run. The parameter is made without randomness:
    the global RNG is not touched."""
    holder = torch.nn.Module()
    holder.weight = torch.nn.Parameter(torch.ones(1))
    with _refusal_names(key):
        optimizer = factory.create([("trial", holder)], lr=1e-3, compiled=False)
        for _ in range(2):
            optimizer.zero_grad()
            (holder.weight * 2.0).sum().backward()
            optimizer.step()
    return factory


@contextlib.contextmanager
def _refusal_names(key: str) -> Iterator[None]:
    """Whatever torch or d3rlpy raises on a value it cannot use, as a config error naming
    `key` (the one wording of every trial's refusal)."""
    try:
        yield
    except Exception as exc:
        raise _CHECK.fail(key, f"rejected by torch: {type(exc).__name__}: {exc}") from None


def optimizer_factories(
    optim: OptimSection, facts: AlgoFacts, default_factories: dict[str, Any] | None
) -> dict[str, OptimizerFactory]:
    """Config field name -> optimizer factory for every network of the algorithm."""
    defaults = default_factories or field_defaults(facts.config_class)
    spec = OPTIMIZER_NAMES[optim.name]
    networks = optim.networks or tuple(facts.networks)
    variant = SAMFactory.config_fields(dict(optim.variant_params))
    factories: dict[str, OptimizerFactory] = {}
    probe = optim.probe
    probed = set(probe.networks or networks) if probe else set()
    for net, field in facts.networks.items():
        if field in factories:
            continue
        base = base_factory(optim, defaults.get(field))
        if optim.lr_scheduler and net in optim.lr_scheduler:
            scheduler = lr_scheduler_factory(optim.lr_scheduler[net], f"optim.lr_scheduler.{net}")
            base = dataclasses.replace(base, lr_scheduler_factory=scheduler)
        fixed = {}
        if probe is not None and net in probed:
            fixed = {"fixed_rho": float(probe.rho), "fixed_every": int(probe.every)}
        if spec.sharpness_aware and net in networks:
            factories[field] = SAMFactory(
                base=base, rho=optim.rho, **spec.fixed, **variant, **fixed
            )
        elif probe is not None and fixed:
            # a network that trains with its base optimizer, measured by the probe
            factories[field] = SAMFactory(
                base=base, rho=probe.rho, probe_every=probe.every, **fixed
            )
        else:
            factories[field] = base
    return factories


def lr_scheduler_factory(spec: Any, key: str) -> LRSchedulerFactory | None:
    """d3rlpy's scheduler factory from its {type, params} form, tried (`tried`) on plain SGD."""
    factory = decode_factory(OptimizerFactory, "lr_scheduler_factory", spec, key)
    if factory is None:  # d3rlpy's {type: none}
        return None
    tried(SGDFactory(lr_scheduler_factory=factory), key)
    return factory


def algo_config(
    facts: AlgoFacts,
    params: dict[str, Any],
    optim: OptimSection,
    factories: dict[str, OptimizerFactory] | None = None,
) -> LearnableConfig:
    """d3rlpy's <Algo>Config from `algo.params` plus the optimizer factories from `optim`
    (`factories`: those already built from it, as the resolver has them)."""
    for name in params:
        if str(name).endswith("optim_factory"):
            message = "optimizers are set in the optim section (name, base, params)"
            raise _CHECK.fail(f"algo.params.{name}", message)
    simple = {k: v for k, v in params.items() if not isinstance(v, dict)}
    nested = {k: v for k, v in params.items() if isinstance(v, dict)}
    kwargs = dataclass_kwargs(_CHECK, facts.config_class, simple, "algo.params")
    _check_ranges(kwargs)
    for name, value in nested.items():
        kwargs[name] = _decode_nested(facts.config_class, name, value)
    try:
        config = facts.config_class(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise _CHECK.fail("algo.params", f"rejected by d3rlpy: {exc}") from None
    if factories is None:
        factories = optimizer_factories(optim, facts, field_defaults(facts.config_class))
    return dataclasses.replace(config, **factories)


# Ranges d3rlpy does not check itself; a value outside them fails only deep inside training.
AT_LEAST_ONE = (
    "batch_size",
    "n_critics",
    "context_size",
    "n_action_samples",
    "update_actor_interval",
    "target_update_interval",
    "num_heads",
    "num_layers",
)
UNIT_INTERVAL = ("gamma", "tau", "expectile")


def _check_ranges(kwargs: dict[str, Any]) -> None:
    for name, value in kwargs.items():
        key = f"algo.params.{name}"
        if name in AT_LEAST_ONE:
            _CHECK.number(value, key, minimum=1)
        if name in UNIT_INTERVAL:
            _CHECK.number(value, key, above=0.0, maximum=1.0, expected="in (0, 1]")
        if name == "learning_rate" or name.endswith("_learning_rate"):
            _CHECK.number(value, key, minimum=0.0)


def _decode_nested(cls: type, name: str, value: dict[str, Any]) -> Any:
    """Encoder/scaler/Q-function factories in d3rlpy's own {type, params} form."""
    what = f"parameter of {cls.__name__}"
    _CHECK.known_keys({name: value}, field_defaults(cls), "algo.params", what)
    key = f"algo.params.{name}"
    factory = decode_factory(cls, name, value, key)
    if isinstance(factory, VECTOR_ENCODERS):
        _try_vector_encoder(factory, key)
    return factory


# Encoders of flat observations; a pixel encoder's valid settings depend on the image size.
VECTOR_ENCODERS = (VectorEncoderFactory, DefaultEncoderFactory, SimBaEncoderFactory)


def _try_vector_encoder(factory: EncoderFactory, key: str) -> None:
    """Build the encoder for a 3-number observation, with and without an action, on torch's
    meta device (shapes only: no memory, no draw from the RNG; the device context is
    per-thread), so a value torch refuses (activation: relux, dropout_rate: 2) is a config
    error, not a failed run."""
    # a layer of size 0 builds, then fails in d3rlpy's gradient statistics at the first update
    for i, unit in enumerate(getattr(factory, "hidden_units", None) or []):
        _CHECK.integer(unit, f"{key}.params.hidden_units[{i}]", minimum=1)
    for field in dataclasses.fields(factory):
        if field.name.endswith("_size"):  # feature_size, hidden_size
            _CHECK.integer(getattr(factory, field.name), f"{key}.params.{field.name}", minimum=1)
    with _refusal_names(key), torch.device("meta"):
        factory.create((3,))(torch.zeros(2, 3))
        factory.create_with_action((3,), 2)(torch.zeros(2, 3), torch.zeros(2, 2))


def decode_factory(cls: type, name: str, value: Any, key: str) -> Any:
    """A factory in d3rlpy's own {type, params} form, decoded as d3rlpy decodes the field
    `name` of its dataclass `cls` (a config key `key` in messages)."""
    if not isinstance(value, dict) or set(value) - {"type", "params"} or "type" not in value:
        raise _CHECK.fail(key, "give a factory as {type: <name>, params: {...}}")
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    decoder = field.metadata.get("dataclasses_json", {}).get("decoder")
    if decoder is None:
        raise _CHECK.fail(key, "this parameter does not take a {type, params} factory")
    params = _CHECK.mapping(value.get("params"), f"{key}.params")
    try:
        factory = decoder({"type": value["type"], "params": params})
    except KeyError as exc:
        if exc.args and exc.args[0] == value["type"]:
            raise _CHECK.fail(f"{key}.type", f"unknown type {exc}") from None
        raise _CHECK.fail(f"{key}.params", f"{value['type']} needs parameter {exc}") from None
    except (TypeError, ValueError) as exc:
        raise _CHECK.fail(key, f"rejected by d3rlpy: {exc}") from None
    if factory is not None:  # d3rlpy decodes an unknown parameter by dropping it: say so
        what = f"parameter of {value['type']}"
        names = [f.name for f in dataclasses.fields(type(factory))]
        _CHECK.known_keys(params, names, f"{key}.params", what)
    return factory
