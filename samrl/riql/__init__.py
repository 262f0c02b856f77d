"""RIQL (Yang et al., ICLR 2024, arXiv 2310.12955): IQL made robust to corrupted data.

samrl's algorithm table (samrl/algos.py) lists RIQLConfig; `samrl.register()` registers it
with d3rlpy, so `d3rlpy.load_learnable` can rebuild a saved RIQL.
"""

from samrl.riql.algo import RIQL, RIQLConfig, RIQLImpl, observation_statistics

__all__ = ["RIQL", "RIQLConfig", "RIQLImpl", "observation_statistics"]
