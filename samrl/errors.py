"""User-facing errors: each one ends the CLI with one readable line and exit status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SamrlError(Exception):
    """An error caused by user input (config, flag, file, name). Never a bug."""

    kind = "error"

    def __str__(self) -> str:
        return " ".join(str(self.args[0]).split()) if self.args else self.kind


class ConfigError(SamrlError):
    """A config value is wrong; the message names the file and the key path."""

    kind = "config error"

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None):
        self.key = key
        self.source = source
        self.message = message
        parts = [p for p in (source, key) if p]
        super().__init__(": ".join([*parts, message]))


class DatasetError(SamrlError):
    """A dataset is missing, unknown or corrupt."""

    kind = "dataset error"


class RunError(SamrlError):
    """A run directory is in a state that does not allow the requested action."""

    kind = "run error"


def suggest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest valid name, or '' if nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_name(what: str, name: str, choices: Iterable[str]) -> str:
    choices = sorted(choices)
    return f"unknown {what} '{name}'{suggest(name, choices)}; choose from: {', '.join(choices)}"


class LauncherError(SamrlError):
    """A sweep's launcher refused the work (Slurm rejected the job array, no scheduler here)."""

    kind = "launcher error"
