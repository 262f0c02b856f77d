"""Silence d3rlpy's structlog output: samrl shows progress bars and one summary line instead.

Process-wide (structlog's configuration is global); called once by the CLI and by each sweep
worker process before training.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys


def quiet_d3rlpy() -> None:
    """d3rlpy logs every build and epoch through structlog; keep only warnings and errors."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def import_gym_quietly() -> None:
    """d3rlpy 2.8.1 imports the unmaintained gym 0.26, which prints a notice on stderr.

    samrl uses gymnasium only; the notice would bury samrl's one-line messages.
    """
    if "gym" in sys.modules:
        return
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(ImportError):
        import gym  # noqa: F401
