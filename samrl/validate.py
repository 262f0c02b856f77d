"""Validation primitives for everything a user writes: configs, algorithm and optimizer
parameters, sweep files and sweep flags.

Each rule is written once here; `samrl.config` (the experiment config), `samrl.config.build` (d3rlpy
keyword arguments) and `samrl.sweep.grid` (sweep specs) call these. A failure is a ConfigError
whose message is one line `<key>: must be ..., got ...` (the source file is added by whoever
knows it), with a "did you mean" suggestion for a misspelt name.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from samrl.errors import ConfigError, unknown_name

T = TypeVar("T")

#: A dotted key path as `--set`, `--grid` and sweep grids take it (`optim.probe.rho`).
KEY_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
#: Experiment, sweep and run names become folder names: letters, digits, '.', '_', '-'.
NAME = re.compile(r"[\w.-]+")


def as_name(text: str) -> str:
    """`text` with every run of characters a name may not hold replaced by '-'."""
    return re.sub(r"[^\w.-]+", "-", text)


def describe(value: Any) -> str:
    """A value as a message shows it: its type and a short repr (`str '5'`, `nothing`)."""
    if value is None:
        return "nothing"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Checker:
    """Checks values of one input (`source`: a file, or None where the caller adds it).

    `expected` replaces a primitive's own wording with one phrase for every failure
    (`must be an integer >= 1, got 0`) where a user reads that better.
    """

    def __init__(self, source: str | None = None):
        self.source = source

    def fail(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(message, key=key, source=self.source)

    def _fail(self, key: str, value: Any, expected: str | None, message: str) -> ConfigError:
        if expected is not None:
            return self.fail(key, f"must be {expected}, got {value!r}")
        return self.fail(key, message)

    def rebased(self, fn: Callable[[], T]) -> T:
        """fn(), with a ConfigError it raises given this checker's source."""
        try:
            return fn()
        except ConfigError as exc:
            raise ConfigError(exc.message, key=exc.key, source=self.source) from None

    # ---- types and ranges

    def mapping(self, value: Any, key: str, *, expected: str | None = None) -> dict[str, Any]:
        """A mapping (None: an empty one)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._fail(key, value, expected, f"must be a mapping, got {describe(value)}")
        return value

    def integer(
        self, value: Any, key: str, minimum: int | None = None, *, expected: str | None = None
    ) -> int:
        if not _is_integer(value):
            raise self._fail(key, value, expected, f"must be an integer, got {describe(value)}")
        if minimum is not None and value < minimum:
            raise self._fail(key, value, expected, f"must be >= {minimum}, got {value}")
        return int(value)

    def number(
        self,
        value: Any,
        key: str,
        minimum: float | None = None,
        maximum: float | None = None,
        *,
        above: float | None = None,
        expected: str | None = None,
    ) -> float:
        """A finite-or-infinite real number (not nan, not a bool) as a float."""
        if not _is_number(value):
            raise self._fail(key, value, expected, f"must be a number, got {describe(value)}")
        number = float(value)
        if number != number:
            raise self._fail(key, value, expected, "must be a number, got nan")
        if minimum is not None and number < minimum:
            raise self._fail(key, value, expected, f"must be >= {minimum:g}, got {number:g}")
        if above is not None and number <= above:
            raise self._fail(key, value, expected, f"must be > {above:g}, got {number:g}")
        if maximum is not None and number > maximum:
            raise self._fail(key, value, expected, f"must be <= {maximum:g}, got {number:g}")
        return number

    def string(self, value: Any, key: str, *, expected: str | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self._fail(
                key, value, expected, f"must be a non-empty string, got {describe(value)}"
            )
        return value

    def name(self, value: Any, key: str) -> str:
        """A name that becomes a folder: letters, digits, '.', '_' or '-'."""
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise self.fail(key, f"use letters, digits, '.', '_' or '-' only, got {value!r}")
        return value

    def key_path(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not KEY_PATH.fullmatch(value):
            raise self.fail(key, "not a key path like optim.rho")
        return value

    # ---- names from a fixed set

    def choice(self, value: Any, key: str, choices: Iterable[str], what: str) -> str:
        """One of `choices`, else `unknown <what> 'x' (did you mean 'y'?); choose from: ...`."""
        choices = list(choices)
        if not isinstance(value, str) or value not in choices:
            raise self.fail(key, unknown_name(what, str(value), choices))
        return value

    def known_keys(
        self, section: dict[str, Any], allowed: Iterable[str], key: str, what: str = "key"
    ) -> None:
        """Every key of `section` is in `allowed` (the culprit is named `<key>.<name>`)."""
        allowed = list(allowed)
        for name in section:
            if name not in allowed:
                prefix = f"{key}." if key else ""
                raise self.fail(f"{prefix}{name}", unknown_name(what, str(name), allowed))


# ---------------------------------------------------------------- dataclass keyword arguments


def field_defaults(cls: type) -> dict[str, Any]:
    """Keyword-argument name -> default of a dataclass (fields without a default left out)."""
    out = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            out[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            out[field.name] = field.default_factory()
    return out


def dataclass_kwargs(c: Checker, cls: type, params: dict[str, Any], key: str) -> dict[str, Any]:
    """Names and simple types of a dataclass's keyword arguments given in YAML (a d3rlpy
    `<Algo>Config`, an optimizer factory); lists become tuples where the default is one."""
    defaults = field_defaults(cls)
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in params.items():
        if name not in defaults:
            raise c.fail(
                f"{key}.{name}", unknown_name(f"parameter of {cls.__name__}", str(name), defaults)
            )
        default = defaults[name]
        if isinstance(value, list) and isinstance(default, tuple):
            value = tuple(value)
        if not _type_ok(value, default, hints.get(name)):
            raise c.fail(
                f"{key}.{name}", f"must be {type(default).__name__}, got {describe(value)}"
            )
        out[name] = value
    return out


def _type_ok(value: Any, default: Any, hint: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int) and hint is int:
        return _is_integer(value)
    if isinstance(default, float | int) and hint in (float, int):
        return _is_number(value)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def require(ok: bool, name: str, requirement: str, value: object) -> None:
    """A d3rlpy config's own check (samrl's algorithms' `validate`): ValueError
    `<name> <requirement>, got <value>` unless ok."""
    if not ok:
        raise ValueError(f"{name} {requirement}, got {value!r}")


_BOUNDS: dict[str, Callable[[Any], bool]] = {
    ">= 1": lambda v: v >= 1,
    ">= 0": lambda v: v >= 0,
    "> 0": lambda v: v > 0,
}


def require_each(config: object, bound: str, *names: str) -> None:
    """`require` for each named field of `config`, in order: ValueError
    `<name> must be <bound>, got <value>` (bound: ">= 1", ">= 0" or "> 0")."""
    for name in names:
        value = getattr(config, name)
        require(_BOUNDS[bound](value), name, f"must be {bound}", value)
