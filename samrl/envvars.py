"""What the process's environment says: numeric settings read from environment variables (one
parser, one error wording), offline mode (`samrl --offline`, $SAMRL_OFFLINE) and the cores the
process may run on. Nothing here loads torch: a sweep's driver reads them too.

A bad value is a user error (one line naming the variable, exit status 2), never a traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

from samrl.errors import SamrlError

OFFLINE_ENV = "SAMRL_OFFLINE"


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


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a Slurm allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: `samrl --offline` for the command running: a context variable, not the environment, so
#: nothing process-wide changes (a library user's process keeps its own $SAMRL_OFFLINE).
_OFFLINE_MODE: contextvars.ContextVar[bool] = contextvars.ContextVar("samrl_offline", default=False)


@contextlib.contextmanager
def offline_mode() -> Iterator[None]:
    """Never download inside this block (what `samrl --offline` means), whatever
    $SAMRL_OFFLINE says; the runs a sweep starts in other processes inherit it (`offline_env`)."""
    token = _OFFLINE_MODE.set(True)
    try:
        yield
    finally:
        _OFFLINE_MODE.reset(token)


def offline() -> bool:
    """Whether downloads are refused here: `offline_mode`, or $SAMRL_OFFLINE set (not 0)."""
    if _OFFLINE_MODE.get():
        return True
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def offline_env() -> dict[str, str]:
    """The environment a child process (a sweep's local worker) needs to be as offline as this
    one: SAMRL_OFFLINE=1 when it is, else nothing."""
    return {OFFLINE_ENV: "1"} if offline() else {}
