"""Perturbation radius schedules: rho_t for the t-th step of one SAM optimizer (t from 0).

- constant:        rho_t = rho (the default; plain SAM).
- linear_warmup:   rho_t = rho_min + (rho - rho_min) * min(1, (t + 1) / warmup_steps); the
                   first step already perturbs (a rho = 0 step would only cost time).
- lr_proportional: rho_t = rho_min + (rho - rho_min) * (lr_t - lr_min) / (lr_max - lr_min)
                   (GSAM, Zhuang et al. 2022), lr_t the learning rate this very step applies,
                   lr_max the base optimizer's initial lr, lr_min its scheduler's floor
                   (CosineAnnealingLR's eta_min, else 0). A constant lr gives rho_t = rho.

t counts the steps of this network's optimizer (TD3's actor steps every other update), and
is saved with the optimizer state, so a resumed run continues the schedule.
"""

from __future__ import annotations

import dataclasses
from typing import Any

RHO_SCHEDULES = ("constant", "linear_warmup", "lr_proportional")


@dataclasses.dataclass(frozen=True)
class RhoSchedule:
    kind: str
    rho: float
    warmup_steps: int = 0
    rho_min: float = 0.0

    def value(self, step: int, lr: float = 0.0, lr_max: float = 0.0, lr_min: float = 0.0) -> float:
        if self.kind == "constant":
            return self.rho  # the very float plain SAM uses: bitwise the same eps
        if self.kind == "linear_warmup":
            fraction = min(1.0, (step + 1) / self.warmup_steps)
        elif self.kind == "lr_proportional":
            if lr_max <= lr_min:
                return self.rho
            fraction = min(1.0, max(0.0, (lr - lr_min) / (lr_max - lr_min)))
        else:
            raise ValueError(f"unknown rho schedule {self.kind!r}")
        return self.rho_min + (self.rho - self.rho_min) * fraction


def lr_range(optim: Any, lr_scheduler: Any) -> tuple[float, float, float]:
    """(lr now, lr_max, lr_min) of a torch optimizer's first parameter group and its scheduler."""
    group = optim.param_groups[0]
    lr = float(group["lr"])
    # LRScheduler stores the lr it started from; without a scheduler the lr never changes.
    lr_max = float(group.get("initial_lr", lr))
    lr_min = float(getattr(lr_scheduler, "eta_min", 0.0)) if lr_scheduler is not None else lr_max
    return lr, lr_max, lr_min
