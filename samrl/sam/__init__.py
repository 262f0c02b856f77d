"""The SAM engine: sharpness-aware optimizer factories for d3rlpy and the install step.

Usage::

    algo = d3rlpy.algos.CQLConfig(critic_optim_factory=SAMFactory(rho=0.05)).create()
    algo.build_with_dataset(dataset)
    samrl.sam.install(algo)        # again after d3rlpy.load_learnable

`install` registers the SAM optimizer factory with d3rlpy; to load a saved model, use
`samrl.load_learnable(path)` (or call `samrl.register()` before `d3rlpy.load_learnable`).

A new SAM variant: a `SAMVariant` subclass with `@register_variant` (docs/sam-variants.md).

The names below load on first use, so `samrl.sam.variants` and `samrl.sam.names` (the
registered variants and the optimizer names, plain Python) can be read without importing torch
or d3rlpy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SAMFactory": "samrl.sam.factory",
    "SAMOptimizerWrapper": "samrl.sam.factory",
    "SAMVariant": "samrl.sam.strategy",
    "Param": "samrl.sam.strategy",
    "register_variant": "samrl.sam.strategy",
    "install": "samrl.sam.engine",
    "is_installed": "samrl.sam.engine",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'samrl.sam' has no attribute {name!r}")
