"""samrl: sharpness-aware minimization for offline reinforcement learning on d3rlpy 2.8.1."""

from __future__ import annotations

__version__ = "0.1.0"

# Importing these registers samrl's optimizer factory and COMBO with d3rlpy, so
# `d3rlpy.load_learnable` can rebuild what samrl trained after a plain `import samrl`.
from samrl import combo as _combo  # noqa: F401
from samrl.sam import factory as _factory  # noqa: F401
