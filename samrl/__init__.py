"""samrl: sharpness-aware minimization for offline reinforcement learning on d3rlpy 2.8.1."""

from __future__ import annotations

import contextlib
import io
import sys

__version__ = "0.1.0"


def _import_gym_quietly() -> None:
    """d3rlpy 2.8.1 imports the unmaintained gym 0.26, which prints a notice on stderr.

    samrl uses gymnasium only; the notice would bury samrl's one-line messages.
    """
    if "gym" in sys.modules:
        return
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(ImportError):
        import gym  # noqa: F401


_import_gym_quietly()

# Importing these registers samrl's optimizer factory and COMBO with d3rlpy, so
# `d3rlpy.load_learnable` can rebuild what samrl trained after a plain `import samrl`.
from samrl import combo as _combo  # noqa: E402,F401
from samrl.sam import factory as _factory  # noqa: E402,F401
