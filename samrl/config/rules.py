"""The checks of single config keys, each named by its declaration in `samrl.config.sections`
(`key("meaning", default, check=<rule>)`).

A rule is `rule(c, value, key) -> value`: it checks one key's value with the primitives of
`samrl.validate` (the Checker `c`, whose source is the config file), raises a ConfigError naming
`key` on the first problem, and returns the value as the Config holds it (a float for a number,
a tuple for a list of names, `auto` resolved to a device). The resolver runs each key's rule in
declaration order; checks that relate several keys live in `samrl.config.crosscheck`, and the
rules that ask the owner of a name (an algorithm, a corruption mode) in `samrl.config.owners`.
Nothing here imports more of samrl than `samrl.validate`, `samrl.errors` and `samrl.sam.names`
(sections.py imports this module, and `samrl.rundir` imports sections.py: no import cycle).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samrl.errors import ConfigError
from samrl.sam.names import OPTIMIZER_NAMES
from samrl.validate import Checker, describe

Rule = Callable[[Checker, Any, str], Any]

#: `dataset.seed` / `dataset.corruption.seed` value tying the draw to the run's train.seed
#: (`samrl.config.crosscheck.tie_seeds` replaces it by that number).
RUN_SEED = "run"

LOGGERS = ("file", "tensorboard", "wandb")
# The module each d3rlpy adapter imports, and the samrl extra that installs it.
REQUIRED_MODULE = {"tensorboard": "tensorboardX", "wandb": "wandb"}


# ---------------------------------------------------------------- rules made from primitives


def integer(minimum: int | None = None, *, expected: str | None = None) -> Rule:
    """An integer (>= minimum), kept as given."""

    def rule(c: Checker, value: Any, key: str) -> Any:
        c.integer(value, key, minimum, expected=expected)
        return value

    return rule


def number(minimum: float | None = None, maximum: float | None = None) -> Rule:
    """A number in [minimum, maximum], as a float."""

    def rule(c: Checker, value: Any, key: str) -> float:
        return c.number(value, key, minimum, maximum)

    return rule


def string(c: Checker, value: Any, key: str) -> str:
    return c.string(value, key)


def mapping(c: Checker, value: Any, key: str) -> dict[str, Any]:
    """A mapping (nothing: an empty one)."""
    return c.mapping(value, key)


def optional(rule: Rule) -> Rule:
    """Nothing (the key left unset), else what `rule` accepts."""

    def checked(c: Checker, value: Any, key: str) -> Any:
        return None if value is None else rule(c, value, key)

    return checked


def required(hint: str, rule: Rule) -> Rule:
    """A key without a default: `missing; <hint>` when not given, else what `rule` accepts."""

    def checked(c: Checker, value: Any, key: str) -> Any:
        if value is None:
            raise c.fail(key, f"missing; {hint}")
        return rule(c, value, key)

    return checked


# ---------------------------------------------------------------- names


def name(c: Checker, value: Any, key: str) -> str:
    """A name that becomes a folder."""
    return c.name(c.string(value, key), key)


def optimizer(c: Checker, value: Any, key: str) -> str:
    name = c.string(value, key)
    return c.choice(name, key, OPTIMIZER_NAMES, "optimizer")


def network_list(c: Checker, value: Any, key: str) -> list[str] | None:
    """A list of network names (one name alone: a list of it); nothing: every network.
    Which names the algorithm has is checked beside it (`crosscheck.networks`)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise c.fail(key, f"must be a non-empty list, got {describe(value)}")
    return value


def lr_schedulers(c: Checker, value: Any, key: str) -> dict[str, Any] | None:
    """network -> d3rlpy {type, params} (`crosscheck.lr_schedulers` checks the networks,
    samrl.config.build decodes each scheduler)."""
    if value is None:
        return None
    given = c.mapping(value, key)
    if not given:
        raise c.fail(key, "give a scheduler per network, or leave the key out")
    return given


# ---------------------------------------------------------------- train and output


def seed_or_run(c: Checker, value: Any, key: str) -> Any:
    """A non-negative integer, or `run` (RUN_SEED) for the run's own train.seed: the data draw
    (or the corruption draw) then varies with the seed, so confidence intervals over seeds
    include it (DESIGN.md section 8). The resolved config records the number, so a run's hash
    is the same as with the seed written out."""
    if isinstance(value, str):
        if value != RUN_SEED:
            raise c.fail(key, f"must be a non-negative integer or '{RUN_SEED}', got {value!r}")
        return value
    c.integer(value, key, minimum=0)
    return value


def threads(c: Checker, value: Any, key: str) -> Any:
    if value not in ("auto", "adaptive"):
        c.integer(value, key, 1, expected="auto, adaptive or an integer >= 1")
    return value


def device(c: Checker, value: Any, key: str) -> str:
    """`auto` -> cuda:0 when a GPU is there, else cpu; a CUDA device that exists here."""
    # torch loads only when a config is resolved, not with samrl.config
    import torch

    device = c.string(value, key)
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not match:
        raise c.fail(key, f"must be auto, cpu, cuda or cuda:N, got '{device}'")
    if not torch.cuda.is_available():
        raise c.fail(
            key,
            f"'{device}' requested but CUDA is not available here "
            "(torch reports no GPU); use cpu or auto",
        )
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise c.fail(
            key,
            f"'{device}' requested but only {torch.cuda.device_count()} CUDA device(s) exist",
        )
    return f"cuda:{index}"


def directory(c: Checker, value: Any, key: str) -> str:
    """A folder path (made when needed), not an existing file."""
    path = c.string(value, key)
    if Path(path).exists() and not Path(path).is_dir():
        raise c.fail(key, f"{path} is a file, not a directory")
    return path


def check_loggers(value: Any, key: str = "output.loggers") -> list[str]:
    """The validated logger list, `file` first; a missing package is a ConfigError."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"must be a list of {', '.join(LOGGERS)}, got {value!r}", key=key)
    for name in value:
        Checker().choice(name, key, LOGGERS, "logger")  # `unknown logger 'x' (did you mean ...`
        module = REQUIRED_MODULE.get(name)
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"{name} needs the {module} package: pip install 'samrl[{name}]'", key=key
            )
    return ["file", *dict.fromkeys(v for v in value if v != "file")]


def loggers(c: Checker, value: Any, key: str) -> tuple[str, ...]:
    return tuple(c.rebased(lambda: check_loggers(value, key)))


# ---------------------------------------------------------------- dataset and corruption


def finite(minimum: float) -> Rule:
    """A finite number >= minimum, as a float."""

    def rule(c: Checker, value: Any, key: str) -> float:
        number = c.number(value, key, minimum=minimum)
        if number == float("inf"):
            raise c.fail(key, "must be finite, got inf")
        return number

    return rule


def layer_sizes(c: Checker, value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise c.fail(key, "must be a list of layer sizes, e.g. [256, 256]")
    for size in value:
        c.integer(size, key, minimum=1)
    return tuple(value)
