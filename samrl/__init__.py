"""samrl: sharpness-aware minimization for offline reinforcement learning on d3rlpy 2.8.1."""

from __future__ import annotations

__version__ = "0.1.0"

# Importing the engine registers samrl's optimizer factories with d3rlpy, so
# `d3rlpy.load_learnable` can rebuild algorithms trained with SAM after `import samrl`.
from samrl.sam import factory as _factory  # noqa: F401
