"""COMBO (Yu et al. 2021): conservative offline model-based policy optimization on d3rlpy 2.x.

samrl's algorithm table (samrl/algos.py) lists COMBOConfig; `samrl.register()` registers it
with d3rlpy, so `d3rlpy.load_learnable` can rebuild a saved COMBO.
"""

from samrl.combo.algo import COMBO, COMBOConfig
from samrl.combo.impl import COMBOImpl

__all__ = ["COMBO", "COMBOConfig", "COMBOImpl"]
