"""The SAM engine: sharpness-aware optimizer factories for d3rlpy and the install step.

Usage::

    algo = d3rlpy.algos.CQLConfig(critic_optim_factory=SAMFactory(rho=0.05)).create()
    algo.build_with_dataset(dataset)
    samrl.sam.install(algo)        # again after d3rlpy.load_learnable
"""

from samrl.sam.engine import install, is_installed
from samrl.sam.factory import SAMFactory, SAMOptimizerWrapper

__all__ = ["SAMFactory", "SAMOptimizerWrapper", "install", "is_installed"]
