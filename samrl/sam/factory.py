"""d3rlpy optimizer factory for SAM and its variants, registered so configs serialize and load."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from d3rlpy.optimizers import OptimizerFactory, register_optimizer_factory
from d3rlpy.optimizers.optimizers import make_optimizer_field
from torch import nn

from samrl.errors import ConfigError
from samrl.sam.optimizer import WEIGHT_DECAY_MODES, SAMOptimizerWrapper
from samrl.sam.schedules import RHO_SCHEDULES, RhoSchedule
from samrl.sam.variants import DEFAULT_ALPHA, VARIANTS


@dataclasses.dataclass()
class SAMFactory(OptimizerFactory):
    """Sharpness-aware wrapper around any registered d3rlpy optimizer factory.

    Args:
        base: the base optimizer factory (Adam by default); its clip_grad_norm and lr scheduler
            apply to the SAM gradient exactly as they would to a plain gradient.
        rho: radius of the perturbation ball (>= 0). rho = 0 reproduces `base` bitwise.
        adaptive: ASAM (Kwon et al. 2021): the ball is scaled elementwise by |w|.
        probe_every: 0 trains with SAM; k > 0 keeps the base optimizer's update and only
            measures sharpness at radius rho every k steps (trajectory unchanged).
        variant: sam | periodic_sam | looksam | gsam | msam (see samrl/sam/variants.py).
        k: periodic_sam/looksam: the full SAM step every k-th step (k = 1: plain SAM).
        alpha: looksam: weight of the stored direction (default 0.7); gsam: weight of the
            surrogate-gap correction (default 0.1, 0 is plain SAM). Both in [0, 1].
        m: msam: rows per perturbation chunk; must divide the minibatch size.
        rho_schedule, warmup_steps, rho_min: radius schedule (samrl/sam/schedules.py).
        weight_decay_mode: decoupled (default): the base optimizer's weight decay acts at its
            step, outside the perturbation; loss: it is an L2 term of the loss that SAM sees
            (in eps and in the SAM gradient, wd (w + eps)), the base's own decay switched off.
        fixed_rho, fixed_every: also measure sharpness at the fixed radius fixed_rho every
            fixed_every steps (forward only; columns `<net>_rho<r>_sharpness`), so runs of a
            rho sweep share one comparable measurement. None: off.

    The defaults of the fields after probe_every reproduce plain SAM bitwise.
    """

    base: OptimizerFactory = make_optimizer_field()
    rho: float = 0.05
    adaptive: bool = False
    probe_every: int = 0
    variant: str = "sam"
    k: int = 1
    alpha: float | None = None
    m: int = 0
    rho_schedule: str = "constant"
    warmup_steps: int = 0
    rho_min: float = 0.0
    weight_decay_mode: str = "decoupled"
    fixed_rho: float | None = None
    fixed_every: int = 0

    def __post_init__(self) -> None:
        if not self.rho >= 0.0:
            raise ValueError(f"rho must be >= 0, got {self.rho}")
        if self.probe_every < 0:
            raise ValueError(f"probe_every must be >= 0, got {self.probe_every}")
        if self.fixed_rho is not None and not (self.fixed_rho >= 0.0 and self.fixed_every >= 1):
            raise ValueError("a fixed-radius probe needs fixed_rho >= 0 and fixed_every >= 1")
        if isinstance(self.base, SAMFactory):
            raise ValueError("the base of a SAM optimizer cannot itself be SAM")
        _check_variant_fields(self)

    @property
    def effective_alpha(self) -> float:
        if self.alpha is not None:
            return float(self.alpha)
        return DEFAULT_ALPHA.get(self.variant, 0.0)

    def create(
        self, named_modules: Iterable[tuple[str, nn.Module]], lr: float, compiled: bool
    ) -> SAMOptimizerWrapper:
        base = self.base
        # Clipping or a scheduler given on the SAM factory itself act like the base's own.
        if self.clip_grad_norm is not None:
            base = dataclasses.replace(base, clip_grad_norm=self.clip_grad_norm)
        if self.lr_scheduler_factory is not None:
            base = dataclasses.replace(base, lr_scheduler_factory=self.lr_scheduler_factory)
        return SAMOptimizerWrapper(
            base.create(named_modules, lr, compiled),
            rho=self.rho,
            adaptive=self.adaptive,
            probe_every=self.probe_every,
            variant=self.variant,
            k=self.k,
            alpha=self.effective_alpha,
            m=self.m,
            schedule=RhoSchedule(self.rho_schedule, self.rho, self.warmup_steps, self.rho_min),
            weight_decay_mode=self.weight_decay_mode,
            fixed_rho=self.fixed_rho,
            fixed_every=self.fixed_every,
        )

    @staticmethod
    def get_type() -> str:
        return "sam"


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(message, key=f"optim.{key}")


def _integer(value: Any, key: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, f"must be an integer, got {value!r}")
    if value < minimum:
        raise _fail(key, f"must be >= {minimum}, got {value}")


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _fail(key, f"must be one of {', '.join(choices)}; got {value!r}")


def _check_variant_fields(f: SAMFactory) -> None:
    """Variant parameters: a ConfigError naming `optim.<field>` (the config key of that name)."""
    _choice(f.variant, "variant", VARIANTS)
    _integer(f.k, "k", 1)
    if f.k != 1 and f.variant not in ("periodic_sam", "looksam"):
        raise _fail("k", f"applies to periodic_sam and looksam, not {f.variant}")
    if f.alpha is not None:
        if isinstance(f.alpha, bool) or not isinstance(f.alpha, int | float):
            raise _fail("alpha", f"must be a number, got {f.alpha!r}")
        if not 0.0 <= f.alpha <= 1.0:
            raise _fail("alpha", f"must be in [0, 1], got {f.alpha}")
        if f.variant not in DEFAULT_ALPHA:
            raise _fail("alpha", f"applies to looksam and gsam, not {f.variant}")
    _integer(f.m, "m", 0)
    if f.variant == "msam" and f.m < 1:
        raise _fail("m", f"msam needs the chunk size m (rows per perturbation, >= 1), got {f.m}")
    if f.variant != "msam" and f.m != 0:
        raise _fail("m", f"applies to msam, not {f.variant}")
    _choice(f.rho_schedule, "rho_schedule", RHO_SCHEDULES)
    _integer(f.warmup_steps, "warmup_steps", 0)
    if f.rho_schedule == "linear_warmup" and f.warmup_steps < 1:
        raise _fail("warmup_steps", f"rho_schedule linear_warmup needs >= 1, got {f.warmup_steps}")
    if f.rho_schedule != "linear_warmup" and f.warmup_steps != 0:
        raise _fail("warmup_steps", f"applies to rho_schedule linear_warmup, not {f.rho_schedule}")
    if isinstance(f.rho_min, bool) or not isinstance(f.rho_min, int | float):
        raise _fail("rho_min", f"must be a number, got {f.rho_min!r}")
    if not 0.0 <= f.rho_min <= f.rho:
        raise _fail("rho_min", f"must be in [0, rho = {f.rho:g}], got {f.rho_min}")
    if f.rho_schedule == "constant" and f.rho_min != 0.0:
        raise _fail("rho_min", "applies to rho_schedule linear_warmup and lr_proportional")
    _choice(f.weight_decay_mode, "weight_decay_mode", WEIGHT_DECAY_MODES)
    if f.probe_every > 0 and (f.variant != "sam" or f.rho_schedule != "constant"):
        raise ValueError("a sharpness probe measures plain SAM sharpness at a constant rho")


register_optimizer_factory(SAMFactory)
