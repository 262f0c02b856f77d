"""d3rlpy optimizer factory for SAM and its variants, registered so configs serialize and load."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from d3rlpy.optimizers import OptimizerFactory, register_optimizer_factory
from d3rlpy.optimizers.optimizers import make_optimizer_field
from d3rlpy.serializable_config import CONFIG_STORAGE
from torch import nn

from samrl.sam import variants as _variants  # noqa: F401  (registers the built-in variants)
from samrl.sam.optimizer import WEIGHT_DECAY_MODES, SAMOptimizerWrapper
from samrl.sam.schedules import RHO_SCHEDULES, RhoSchedule
from samrl.sam.strategy import (
    SAMVariant,
    check_choice,
    check_integer,
    check_number,
    declared_by,
    fail,
    join_names,
    param_keys,
    variant_class,
    variant_names,
)


@dataclasses.dataclass()
class SAMFactory(OptimizerFactory):
    """Sharpness-aware wrapper around any registered d3rlpy optimizer factory.

    Args:
        base: the base optimizer factory (Adam by default); its clip_grad_norm and lr scheduler
            apply to the SAM gradient exactly as they would to a plain gradient.
        rho: radius of the perturbation ball (>= 0). rho = 0 reproduces `base` bitwise.
        adaptive: ASAM's ball (Kwon et al. 2021), scaled elementwise by |w| (variant asam
            implies it; with another variant it changes that variant's ball).
        probe_every: 0 trains with SAM; k > 0 keeps the base optimizer's update and only
            measures sharpness at radius rho every k steps (trajectory unchanged).
        variant: a registered SAM variant: sam, asam, periodic_sam, looksam, gsam, msam
            (samrl/sam/variants.py) or one registered with samrl.sam.strategy.register_variant.
        k: periodic_sam/looksam: the full SAM step every k-th step (k = 1: plain SAM).
        alpha: looksam: weight of the stored direction (default 0.7); gsam: weight of the
            surrogate-gap correction (default 0.1, 0 is plain SAM). Both in [0, 1].
        m: msam: rows per perturbation chunk; must divide the minibatch size.
        options: the parameters of a registered variant that have no field here.
        rho_schedule, warmup_steps, rho_min: radius schedule (samrl/sam/schedules.py).
        weight_decay_mode: decoupled (default): the base optimizer's weight decay acts at its
            step, outside the perturbation; loss: it is an L2 term of the loss that SAM sees
            (in eps and in the SAM gradient, wd (w + eps)), the base's own decay switched off.
        fixed_rho, fixed_every: also measure sharpness at the fixed radius fixed_rho every
            fixed_every steps (forward only; columns `<net>_rho<r>_sharpness`), so runs of a
            rho sweep share one comparable measurement. None: off.

    The defaults of the fields after probe_every reproduce plain SAM bitwise. The fields are
    what d3rlpy saves in params.json and model files; keep them loadable.
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
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.rho >= 0.0:
            raise ValueError(f"rho must be >= 0, got {self.rho}")
        if self.probe_every < 0:
            raise ValueError(f"probe_every must be >= 0, got {self.probe_every}")
        if self.fixed_rho is not None and not (self.fixed_rho >= 0.0 and self.fixed_every >= 1):
            raise ValueError("a fixed-radius probe needs fixed_rho >= 0 and fixed_every >= 1")
        if isinstance(self.base, SAMFactory):
            raise ValueError("the base of a SAM optimizer cannot itself be SAM")
        _check_variant(self)
        _check_common(self)
        if self.variant_class.adaptive:
            self.adaptive = True

    @staticmethod
    def config_fields(values: dict[str, Any]) -> dict[str, Any]:
        """SAMFactory keyword arguments from `optim.<key>` values: a key without a field of its
        own goes into `options`."""
        fields = {f.name for f in dataclasses.fields(SAMFactory)} - {"options"}
        options = {k: v for k, v in values.items() if k not in fields}
        plain = {k: v for k, v in values.items() if k in fields}
        return {**plain, "options": options} if options else plain

    @property
    def variant_class(self) -> type[SAMVariant]:
        return variant_class(self.variant)

    def variant_params(self) -> dict[str, Any]:
        """The variant's parameters, defaults filled in (looksam: alpha 0.7 when unset)."""
        values = {}
        for param in self.variant_class.params:
            if param.name in PARAM_FIELDS:
                value = getattr(self, param.name)
            else:
                value = self.options.get(param.name)
            values[param.name] = param.default if value is None else value
        return values

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
            variant=self.variant_class(**self.variant_params()),
            schedule=RhoSchedule(self.rho_schedule, self.rho, self.warmup_steps, self.rho_min),
            weight_decay_mode=self.weight_decay_mode,
            fixed_rho=self.fixed_rho,
            fixed_every=self.fixed_every,
        )

    @staticmethod
    def get_type() -> str:
        return "sam"


def _check_variant(f: SAMFactory) -> None:
    """The variant's own checks, then no parameter of another variant set: a ConfigError
    naming `optim.<key>` (the config key of that name)."""
    check_choice(f.variant, "variant", variant_names(), "SAM variant")
    cls = f.variant_class
    known = param_keys()
    for key in f.options:
        if key in PARAM_FIELDS or key not in known:
            raise fail(key, f"is not a parameter of a SAM variant ({', '.join(known)})")
    cls.check(f.variant_params())
    declared = {p.name for p in cls.params}
    for key in known:
        if key in declared:
            continue
        if key in f.options or (key in PARAM_FIELDS and getattr(f, key) != _FIELD_DEFAULTS[key]):
            raise fail(key, f"applies to {join_names(declared_by(key))}, not {f.variant}")


def _check_common(f: SAMFactory) -> None:
    """The radius schedule, weight decay mode and probe: the same for every variant."""
    check_choice(f.rho_schedule, "rho_schedule", RHO_SCHEDULES, "rho schedule")
    check_integer(f.warmup_steps, "warmup_steps", 0)
    if f.rho_schedule == "linear_warmup" and f.warmup_steps < 1:
        raise fail("warmup_steps", f"rho_schedule linear_warmup needs >= 1, got {f.warmup_steps}")
    if f.rho_schedule != "linear_warmup" and f.warmup_steps != 0:
        raise fail("warmup_steps", f"applies to rho_schedule linear_warmup, not {f.rho_schedule}")
    check_number(f.rho_min, "rho_min")
    if not 0.0 <= f.rho_min <= f.rho:
        raise fail("rho_min", f"must be in [0, rho = {f.rho:g}], got {f.rho_min}")
    if f.rho_schedule == "constant" and f.rho_min != 0.0:
        raise fail("rho_min", "applies to rho_schedule linear_warmup and lr_proportional")
    check_choice(f.weight_decay_mode, "weight_decay_mode", WEIGHT_DECAY_MODES, "weight decay mode")
    if f.probe_every > 0 and (not f.variant_class.probe_compatible or f.rho_schedule != "constant"):
        raise ValueError("a sharpness probe measures plain SAM sharpness at a constant rho")


_FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SAMFactory)}
#: Variant parameters (declared on the variants, `Param`) that are SAMFactory fields of their
#: own: k, alpha and m, as saved models and params.json store them; a variant's other
#: parameters live in `options`. A field's default means "not set": the Param's default applies.
PARAM_FIELDS = tuple(name for name in _FIELD_DEFAULTS if name in param_keys())


def register_factory() -> None:
    """Register SAMFactory with d3rlpy's optimizer factories, so a model that uses it loads
    again (idempotent; `samrl.register()` also registers samrl's own algorithms)."""
    if SAMFactory.get_type() not in CONFIG_STORAGE[OptimizerFactory].config_list:
        register_optimizer_factory(SAMFactory)
