"""A config key's check lives with its declaration (`key(..., check=<rule>)` in
samrl/config/sections.py: a rule of samrl/config/rules.py, or the name of one in
samrl/config/owners.py); the resolver runs each key's rule from there, in declaration order,
so a new key with a check needs no change to samrl/config/resolve.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest

from samrl.config import Config, resolve
from samrl.config import rules as rules_module
from samrl.config.resolve import key_check, section_from
from samrl.config.sections import Section, key
from samrl.errors import ConfigError
from samrl.validate import Checker

#: Every section present (corruption with its attacker, probe, Hessian).
FULL = {
    "name": "rules",
    "algo": {"name": "iql", "params": {"batch_size": 16}},
    "dataset": {
        "name": "pendulum-random",
        "size": 500,
        "corruption": {"mode": "adversarial", "fields": ["actions"], "attacker": {}},
    },
    "optim": {"name": "sam", "probe": {}},
    "train": {"device": "cpu", "n_steps": 10, "n_steps_per_epoch": 5},
    "analysis": {"hessian": {}},
}


def _declared(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field[Any]]]:
    """(key path, field) of every key with a value of its own, in declaration order (a key
    holding a section stands for that section's keys)."""
    for f in dataclasses.fields(cls):
        if "doc" not in f.metadata:
            continue
        sub = f.metadata.get("section")
        if sub is not None:
            yield from _declared(sub, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def test_every_key_declares_its_check() -> None:
    assert [path for path, f in _declared(Config) if not callable(key_check(f))] == []


def test_the_resolver_runs_each_key_check_from_its_declaration_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    for _, f in _declared(Config):
        check = key_check(f)

        def spy(c: Checker, value: Any, path: str, check: Any = check) -> Any:
            calls.append(path)
            return check(c, value, path)

        monkeypatch.setattr(f, "metadata", MappingProxyType({**f.metadata, "check": spy}))
    resolve(FULL, source="rules.yaml", check_dataset=False)
    assert calls == [path for path, _ in _declared(Config)]


@dataclasses.dataclass(frozen=True)
class _Toy(Section):
    """A section as a new feature would declare it: nothing else to edit for its checks."""

    n: int = key("a count", 3, check=rules_module.integer(1))
    rate: float = key("a share", 0.5, check=rules_module.number(0.0, 1.0))
    label: str | None = key("a folder name", None, check=rules_module.optional(rules_module.name))


def test_a_new_key_is_checked_from_its_declaration_alone() -> None:
    c = Checker("toy.yaml")
    toy = section_from(c, _Toy, {"rate": 1}, "toy")
    assert toy == _Toy(n=3, rate=1.0, label=None) and isinstance(toy.rate, float)
    with pytest.raises(ConfigError) as error:
        section_from(c, _Toy, {"n": 0}, "toy")
    assert str(error.value) == "toy.yaml: toy.n: must be >= 1, got 0"
    with pytest.raises(ConfigError, match=r"toy\.label: use letters"):
        section_from(c, _Toy, {"label": "a b"}, "toy")
