"""The rules of single config keys that ask the owner of a name: `samrl.algos` (algorithms),
`samrl.config.build` (base optimizers), `samrl.data` (corruption modes, fields, attackers;
dataset pins).

A declaration in `samrl.config.sections` names one of these by its name
(`check="algorithm"`), not by reference: sections.py is imported by `samrl.rundir`, which those
owners import, so importing this module there would make an import cycle. The resolver looks the
name up here (`samrl.config.resolve.key_check`). A rule is as in `samrl.config.rules`:
`rule(c, value, key) -> value`, run on the value given or the default (nothing included).
"""

from __future__ import annotations

from typing import Any

from samrl.validate import Checker


def algorithm(c: Checker, value: Any, key: str) -> str:
    """A d3rlpy algorithm (or one of samrl's own), by its snake_case name; required."""
    # samrl.algos loads d3rlpy: imported when a config is resolved, not with samrl.config
    from samrl.algos import algo_facts

    if value is None:
        raise c.fail(key, "missing; name a d3rlpy algorithm, e.g. cql, iql, td3_plus_bc")
    c.rebased(lambda: algo_facts(c.string(value, key)))
    return value


def base_optimizer(c: Checker, value: Any, key: str) -> str | None:
    """One of samrl.config.build's base optimizers, or nothing (the algorithm's own)."""
    if value is None:
        return None
    # samrl.config.build loads torch and d3rlpy: imported when a config names a base optimizer
    from samrl.config.build import BASE_FACTORIES

    return c.choice(c.string(value, key), key, BASE_FACTORIES, "base optimizer")


def corruption_mode(c: Checker, value: Any, key: str) -> str:
    # samrl.data loads torch and d3rlpy (and imports samrl.config back): imported when used
    from samrl.data.corruption import MODES

    return c.choice(value, key, MODES, "corruption mode")


def corrupted_fields(c: Checker, value: Any, key: str) -> tuple[str, ...]:
    """One field or several, each once, in RIQL's order (observations, actions, rewards,
    next_observations) whatever the order written."""
    # samrl.data loads torch and d3rlpy (and imports samrl.config back): imported when used
    from samrl.data.corruption import FIELDS

    fields = [value] if isinstance(value, str) else value
    if not isinstance(fields, list | tuple) or not fields:
        raise c.fail(key, f"must be a list of fields from {', '.join(FIELDS)}")
    for field in fields:
        c.choice(field, key, FIELDS, "corrupted field")
    if len(set(fields)) != len(fields):
        raise c.fail(key, f"names a field twice: {list(fields)}")
    return tuple(f for f in FIELDS if f in fields)


def attacker_algo(c: Checker, value: Any, key: str) -> str:
    # samrl.data loads torch and d3rlpy (and imports samrl.config back): imported when used
    from samrl.data.corruption import ATTACKER_ALGOS

    return c.choice(value, key, ATTACKER_ALGOS, "attacker algorithm")


def sha256(c: Checker, value: Any, key: str) -> str | None:
    """A dataset file's sha256 (64 hex digits, as lower case), or nothing (not pinned)."""
    if value is None:
        return None
    # samrl.data loads torch and d3rlpy (and imports samrl.config back): imported when used
    from samrl.data.provenance import SHA256_PATTERN

    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not SHA256_PATTERN.fullmatch(text):
        raise c.fail(
            key, f"must be 64 hexadecimal digits in quotes (what sha256sum prints), got {value!r}"
        )
    return text
