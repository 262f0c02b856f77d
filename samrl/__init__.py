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


def _started_as_command() -> bool:
    """Whether this process is the `samrl` command (`samrl ...` or `python -m samrl ...`).

    The command imports each subsystem when a command needs it (`samrl --help` stays fast);
    everything that trains or loads a model imports `samrl.sam` / `samrl.algos`, which register
    with d3rlpy on their own.
    """
    args = iter(list(getattr(sys, "orig_argv", []))[1:])
    for arg in args:
        if arg == "-m":
            return next(args, "") == "samrl"
        if arg in ("-X", "-W"):  # interpreter options with a value
            next(args, "")
        elif not arg.startswith("-"):  # the script: the `samrl` console entry point
            return arg.rsplit("/", 1)[-1] == "samrl"
    return False


def register_with_d3rlpy() -> None:
    """Register samrl's optimizer factory, COMBO and RIQL with d3rlpy (idempotent), so
    `d3rlpy.load_learnable` can rebuild what samrl trained; gym's notice is kept off stderr."""
    import_gym_quietly()
    from samrl import combo as _combo  # noqa: F401
    from samrl import riql as _riql  # noqa: F401
    from samrl.sam import factory as _factory  # noqa: F401


# A plain `import samrl` registers at once (library users then call d3rlpy.load_learnable).
if not _started_as_command():
    register_with_d3rlpy()
