"""samrl: sharpness-aware minimization for offline reinforcement learning on d3rlpy 2.8.1."""

from __future__ import annotations

import contextlib
import io
import sys

__version__ = "0.1.0"


def import_gym_quietly() -> None:
    """d3rlpy 2.8.1 imports the unmaintained gym 0.26, which prints a notice on stderr.

    samrl uses gymnasium only; the notice would bury samrl's one-line messages.
    """
    if "gym" in sys.modules:
        return
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(ImportError):
        import gym  # noqa: F401


_registered = False


def register() -> None:
    """Register samrl's SAM optimizer factory, COMBO and RIQL with d3rlpy, so
    `d3rlpy.load_learnable` can rebuild what samrl trained; gym's notice is kept off stderr.
    Idempotent.

    Importing samrl registers nothing (it changes nothing outside samrl): `samrl.sam.install`
    and the commands that load a model call this; a library user calls it before
    `d3rlpy.load_learnable` of a model samrl saved.
    """
    global _registered
    if _registered:
        return
    import_gym_quietly()
    from d3rlpy.base import register_learnable
    from d3rlpy.optimizers import register_optimizer_factory

    from samrl.combo import COMBOConfig
    from samrl.riql import RIQLConfig
    from samrl.sam.factory import SAMFactory

    register_optimizer_factory(SAMFactory)
    register_learnable(COMBOConfig)
    register_learnable(RIQLConfig)
    _registered = True
