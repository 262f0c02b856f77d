"""From validated config sections to d3rlpy objects: optimizer factories, algorithm config."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from d3rlpy.base import LearnableConfig
from d3rlpy.optimizers import (
    AdamFactory,
    AdamWFactory,
    OptimizerFactory,
    RMSpropFactory,
    SGDFactory,
)

from samrl.algos import AlgoFacts
from samrl.errors import ConfigError, unknown_name
from samrl.sam.factory import SAMFactory
from samrl.sam.variants import OPTIMIZER_NAMES

BASE_FACTORIES: dict[str, type[OptimizerFactory]] = {
    "adam": AdamFactory,
    "sgd": SGDFactory,
    "adamw": AdamWFactory,
    "rmsprop": RMSpropFactory,
}


def _field_defaults(cls: type) -> dict[str, Any]:
    out = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            out[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            out[field.name] = field.default_factory()
    return out


def _typed_kwargs(cls: type, params: dict[str, Any], key: str) -> dict[str, Any]:
    """Check names and simple types of dataclass keyword arguments given in YAML."""
    defaults = _field_defaults(cls)
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in params.items():
        if name not in defaults:
            raise ConfigError(
                unknown_name(f"parameter of {cls.__name__}", str(name), defaults),
                key=f"{key}.{name}",
            )
        default = defaults[name]
        if isinstance(value, list) and isinstance(default, tuple):
            value = tuple(value)
        hint = hints.get(name)
        if not _type_ok(value, default, hint):
            raise ConfigError(
                f"must be {type(default).__name__}, got {type(value).__name__} {value!r}",
                key=f"{key}.{name}",
            )
        out[name] = value
    return out


def _type_ok(value: Any, default: Any, hint: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int) and hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float | int) and hint in (float, int):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def base_factory(optim: dict[str, Any], default: OptimizerFactory | None) -> OptimizerFactory:
    """The base optimizer: `optim.base` with `optim.params`, else the algorithm's default."""
    if optim["base"] is None and default is not None:
        kwargs = _typed_kwargs(type(default), optim["params"], "optim.params")
        return dataclasses.replace(default, **kwargs)
    cls = BASE_FACTORIES[optim["base"] or "adam"]
    kwargs = _typed_kwargs(cls, optim["params"], "optim.params")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), key="optim.params") from None


def optimizer_factories(
    optim: dict[str, Any], facts: AlgoFacts, default_factories: dict[str, Any] | None
) -> dict[str, OptimizerFactory]:
    """Config field name -> optimizer factory for every network of the algorithm."""
    defaults = default_factories or _field_defaults(facts.config_class)
    spec = OPTIMIZER_NAMES[optim["name"]]
    variant = {k: v for k, v in optim.items() if k in spec.keys}
    factories: dict[str, OptimizerFactory] = {}
    probe = optim.get("probe")
    probed = set(probe.get("networks") or optim["networks"]) if probe else set()
    for net, field in facts.networks.items():
        if field in factories:
            continue
        base = base_factory(optim, defaults.get(field))
        fixed = {}
        if net in probed:
            assert probe is not None
            fixed = {"fixed_rho": float(probe["rho"]), "fixed_every": int(probe["every"])}
        if spec.sharpness_aware and net in optim["networks"]:
            factories[field] = SAMFactory(
                base=base, rho=optim["rho"], **spec.fixed, **variant, **fixed
            )
        elif fixed:  # a network that trains with its base optimizer, measured by the probe
            factories[field] = SAMFactory(
                base=base, rho=probe["rho"], probe_every=probe["every"], **fixed
            )
        else:
            factories[field] = base
    return factories


def algo_config(facts: AlgoFacts, params: dict[str, Any], optim: dict[str, Any]) -> LearnableConfig:
    """d3rlpy's <Algo>Config from `algo.params` plus the optimizer factories from `optim`."""
    for name in params:
        if str(name).endswith("optim_factory"):
            raise ConfigError(
                "optimizers are set in the optim section (name, base, params)",
                key=f"algo.params.{name}",
            )
    simple = {k: v for k, v in params.items() if not isinstance(v, dict)}
    nested = {k: v for k, v in params.items() if isinstance(v, dict)}
    kwargs = _typed_kwargs(facts.config_class, simple, "algo.params")
    _check_ranges(kwargs)
    for name, value in nested.items():
        kwargs[name] = _decode_nested(facts.config_class, name, value)
    try:
        config = facts.config_class(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(f"rejected by d3rlpy: {exc}", key="algo.params") from None
    factories = optimizer_factories(optim, facts, _field_defaults(facts.config_class))
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
UNIT_INTERVAL = ("gamma", "tau")


def _check_ranges(kwargs: dict[str, Any]) -> None:
    for name, value in kwargs.items():
        key = f"algo.params.{name}"
        if name in AT_LEAST_ONE and value < 1:
            raise ConfigError(f"must be >= 1, got {value}", key=key)
        if name in UNIT_INTERVAL and not 0.0 < value <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {value}", key=key)
        if (name == "learning_rate" or name.endswith("_learning_rate")) and value < 0:
            raise ConfigError(f"must be >= 0, got {value}", key=key)


def _decode_nested(cls: type, name: str, value: dict[str, Any]) -> Any:
    """Encoder/scaler/Q-function factories in d3rlpy's own {type, params} form."""
    key = f"algo.params.{name}"
    defaults = _field_defaults(cls)
    if name not in defaults:
        raise ConfigError(unknown_name(f"parameter of {cls.__name__}", name, defaults), key=key)
    if set(value) - {"type", "params"} or "type" not in value:
        raise ConfigError("give a factory as {type: <name>, params: {...}}", key=key)
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    decoder = field.metadata.get("dataclasses_json", {}).get("decoder")
    if decoder is None:
        raise ConfigError("this parameter does not take a {type, params} factory", key=key)
    try:
        return decoder({"type": value["type"], "params": value.get("params") or {}})
    except KeyError as exc:
        raise ConfigError(f"unknown type {exc}", key=f"{key}.type") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"rejected by d3rlpy: {exc}", key=key) from None
