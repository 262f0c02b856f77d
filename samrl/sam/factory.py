"""d3rlpy optimizer factory for SAM/ASAM, registered so algorithm configs serialize and load."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from d3rlpy.optimizers import OptimizerFactory, register_optimizer_factory
from d3rlpy.optimizers.optimizers import make_optimizer_field
from torch import nn

from samrl.sam.optimizer import SAMOptimizerWrapper


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
    """

    base: OptimizerFactory = make_optimizer_field()
    rho: float = 0.05
    adaptive: bool = False
    probe_every: int = 0

    def __post_init__(self) -> None:
        if not self.rho >= 0.0:
            raise ValueError(f"rho must be >= 0, got {self.rho}")
        if self.probe_every < 0:
            raise ValueError(f"probe_every must be >= 0, got {self.probe_every}")
        if isinstance(self.base, SAMFactory):
            raise ValueError("the base of a SAM optimizer cannot itself be SAM")

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
        )

    @staticmethod
    def get_type() -> str:
        return "sam"


register_optimizer_factory(SAMFactory)
