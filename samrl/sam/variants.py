"""Optimizer names accepted in `optim.name` and how each maps onto SAMFactory fields.

`fixed` are the SAMFactory fields a name implies; `keys` are the extra `optim.<key>` entries the
name accepts (each is a SAMFactory field of the same name).
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class OptimizerName:
    sharpness_aware: bool  # False: plain base optimizer (probe allowed)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    keys: tuple[str, ...] = ()


OPTIMIZER_NAMES: dict[str, OptimizerName] = {
    "adam": OptimizerName(sharpness_aware=False),
    "sam": OptimizerName(sharpness_aware=True),
    "asam": OptimizerName(sharpness_aware=True, fixed={"adaptive": True}),
}
