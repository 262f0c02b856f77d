"""samrl: sharpness-aware minimization for offline reinforcement learning on d3rlpy 2.8.1.

`import samrl` loads neither torch nor d3rlpy, and registers nothing with d3rlpy (it changes
nothing outside samrl). The two calls below import what they need when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samrl.quiet import import_gym_quietly
from samrl.safeload import load_learnable as _load_safely

__version__ = "0.1.0"
__all__ = ["import_gym_quietly", "load_learnable", "register"]


def register() -> None:
    """Register samrl's SAM optimizer factory and its own algorithms (COMBO, RIQL) with d3rlpy,
    so `d3rlpy.load_learnable` can rebuild what samrl trained; gym's notice is kept off stderr.
    Idempotent. `samrl.load_learnable` calls it for you.
    """
    from samrl.algos import register as register_with_d3rlpy  # lazy: d3rlpy loads on call

    register_with_d3rlpy()


def load_learnable(path: Path | str, device: Any = None) -> Any:
    """Load a model samrl saved (a `.d3` file): registers samrl with d3rlpy, reads the file
    without unpickling objects (samrl.safeload) and returns d3rlpy's algorithm, as
    `d3rlpy.load_learnable(path, device)` would. Call `samrl.sam.install(algo)` on it to
    continue SAM training.
    """
    register()
    return _load_safely(path, device)
