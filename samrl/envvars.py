"""Numeric settings read from environment variables: one parser, one error wording.

A bad value is a user error (one line naming the variable, exit status 2), never a traceback.
"""

from __future__ import annotations

import os

from samrl.errors import SamrlError


class SettingError(SamrlError):
    """An environment variable samrl reads holds a value it cannot use."""

    kind = "setting error"


def env_number(name: str, default: float, *, integer: bool = False, minimum: float = 0) -> float:
    """$name as a number (an int when `integer`), `default` when unset or blank."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise SettingError(f"${name}: expected {kind}, got {raw!r}") from None
    if value < minimum:
        raise SettingError(f"${name}: must be >= {minimum:g}, got {raw!r}")
    return value
