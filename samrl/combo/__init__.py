"""COMBO (Yu et al. 2021): conservative offline model-based policy optimization on d3rlpy 2.x.

samrl's algorithm table reads ALGORITHM_CONFIGS; importing this package registers COMBOConfig
with d3rlpy, so `d3rlpy.load_learnable` can rebuild a saved COMBO.
"""

from samrl.combo.algo import COMBO
from samrl.combo.config import COMBOConfig
from samrl.combo.impl import COMBOImpl

ALGORITHM_CONFIGS = [COMBOConfig]

__all__ = ["ALGORITHM_CONFIGS", "COMBO", "COMBOConfig", "COMBOImpl"]
