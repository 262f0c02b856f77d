"""Silence d3rlpy's structlog output: samrl shows progress bars and one summary line instead.

Process-wide (structlog's configuration is global); called once by the CLI and by each sweep
worker process before training.
"""

from __future__ import annotations

import logging


def quiet_d3rlpy() -> None:
    """d3rlpy logs every build and epoch through structlog; keep only warnings and errors."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
