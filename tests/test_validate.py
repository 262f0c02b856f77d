"""The validation primitives every user input goes through (samrl.validate): one line naming the
source and key, the value shown, a suggestion for a misspelt name."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from samrl.errors import ConfigError
from samrl.validate import Checker, dataclass_kwargs, require_each

C = Checker("c.yaml")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: C.integer(2.5, "a.b"), "c.yaml: a.b: must be an integer, got float 2.5"),
        (lambda: C.integer(True, "a.b"), "c.yaml: a.b: must be an integer, got bool True"),
        (lambda: C.integer(0, "a.b", 1), "c.yaml: a.b: must be >= 1, got 0"),
        (
            lambda: C.integer(0, "jobs", 1, expected="an integer >= 1"),
            "c.yaml: jobs: must be an integer >= 1, got 0",
        ),
        (lambda: C.number("big", "x"), "c.yaml: x: must be a number, got str 'big'"),
        (lambda: C.number(float("nan"), "x"), "c.yaml: x: must be a number, got nan"),
        (lambda: C.number(-0.1, "x", 0.0), "c.yaml: x: must be >= 0, got -0.1"),
        (lambda: C.number(2, "x", 0.0, 0.9), "c.yaml: x: must be <= 0.9, got 2"),
        (lambda: C.number(0, "x", above=0), "c.yaml: x: must be > 0, got 0"),
        (lambda: C.string("", "s"), "c.yaml: s: must be a non-empty string, got str ''"),
        (lambda: C.mapping([1], "m"), "c.yaml: m: must be a mapping, got list [1]"),
        (lambda: C.name("a/b", "name"), "c.yaml: name: use letters, digits, '.', '_' or '-' "),
        (lambda: C.key_path("a..b", "grid.a..b"), "c.yaml: grid.a..b: not a key path"),
        (
            lambda: C.choice("sma", "optim.name", ["sam", "asam"], "optimizer"),
            "c.yaml: optim.name: unknown optimizer 'sma' (did you mean 'sam'?); "
            "choose from: asam, sam",
        ),
        (
            lambda: C.known_keys({"rh0": 1}, ["rho"], "optim"),
            "c.yaml: optim.rh0: unknown key 'rh0' (did you mean 'rho'?)",
        ),
    ],
)
def test_each_failure_is_one_line_naming_source_key_and_value(call: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_accepted_values_come_back_typed() -> None:
    assert C.number(3, "x") == 3.0 and isinstance(C.number(3, "x"), float)
    assert C.integer(4, "x", 1) == 4
    assert C.mapping(None, "m") == {}
    assert C.name("a-b.c_1", "n") == "a-b.c_1"


def test_rebased_gives_an_error_raised_without_a_source_this_checkers_source() -> None:
    def inner() -> None:
        raise Checker().fail("optim.k", "must be >= 1, got 0")

    with pytest.raises(ConfigError) as info:
        C.rebased(inner)
    assert str(info.value) == "c.yaml: optim.k: must be >= 1, got 0"


def test_dataclass_kwargs_checks_names_and_simple_types() -> None:
    from d3rlpy.algos import CQLConfig

    assert dataclass_kwargs(C, CQLConfig, {"batch_size": 8, "gamma": 1}, "p") == {
        "batch_size": 8,
        "gamma": 1,
    }
    with pytest.raises(ConfigError, match=r"p\.batch_sise: unknown parameter of CQLConfig"):
        dataclass_kwargs(C, CQLConfig, {"batch_sise": 8}, "p")
    with pytest.raises(ConfigError, match=r"p\.batch_size: must be int, got str 'many'"):
        dataclass_kwargs(C, CQLConfig, {"batch_size": "many"}, "p")


def test_the_primitive_rules_are_written_only_in_samrl_validate() -> None:
    """One rule, one place: config, build and sweep checks call samrl.validate instead of
    spelling a type or name rule again (samrl/sam's variant parameters included)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "samrl"
    phrases = (
        "must be an integer",
        "must be a number",
        "must be a non-empty string",
        "use letters, digits",
        r"[A-Za-z_]\w*",  # the key-path pattern
        "get_close_matches",  # "did you mean" (samrl.errors.suggest)
    )
    owners = {root / "validate.py", root / "errors.py"}
    found = [
        f"{path.relative_to(root)}: {phrase}"
        for path in sorted(root.rglob("*.py"))
        if path not in owners
        for phrase in phrases
        if phrase in path.read_text()
    ]
    assert found == []


def test_require_each_checks_named_fields_in_order() -> None:
    """A d3rlpy config's bound checks (COMBO's): the first field out of bounds is named."""
    config = SimpleNamespace(a=1, b=0, c=-1.0, d=0.0)
    require_each(config, ">= 1", "a")
    require_each(config, ">= 0", "b", "d")
    with pytest.raises(ValueError, match=r"^b must be >= 1, got 0$"):
        require_each(config, ">= 1", "a", "b", "c")
    with pytest.raises(ValueError, match=r"^c must be >= 0, got -1.0$"):
        require_each(config, ">= 0", "b", "c")
    with pytest.raises(ValueError, match=r"^d must be > 0, got 0.0$"):
        require_each(config, "> 0", "a", "d")
