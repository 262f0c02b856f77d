"""The built-in SAM variants: their math, as hooks into the SAM step, and their declarations.

Each variant is a SAMVariant (strategy.py) registered under its `optim.name`; its parameters are
the `optim.<key>` entries next to rho. The wrapper's step (optimizer.py) runs the hooks.
names.py reads the registry for the config (`optim.name`, its keys) and the documentation.

sam           SAM (Foret et al. 2021): step with g_s = g(w + eps), eps = rho g/||g||.
asam          ASAM (Kwon et al. 2021): the ball scaled elementwise by |w|.
periodic_sam  k: SAM every k-th step, the base optimizer's plain step in between.
looksam       k, alpha: LookSAM (Liu et al. 2022): SAM every k-th step, which stores
              g_v = g_s - (g.g_s/||g||^2) g (the part of g_s orthogonal to g); in between
              the step uses g + alpha ||g||/||g_v|| g_v.
gsam          alpha: GSAM (Zhuang et al. 2022): step with g_s - alpha g_perp, where
              g_perp = g - (g.g_s/||g_s||^2) g_s is the part of g(w) orthogonal to g_s;
              -g_perp is the surrogate gap's gradient orthogonal to g_s, so this descends the
              gap without changing L(w + eps) to first order (official gsam.py's sign).
msam          m: m-sharpness (Foret et al. 2021): the minibatch split into chunks of m
              rows; per chunk its own g_c at w, eps_c = rho g_c/||g_c|| and g_s,c at w + eps_c;
              step with the mean of the g_s,c. m must divide the minibatch size. Each chunk
              draws its own noise (chunks.py). Costs the algorithm's own full-batch pass plus
              two passes per chunk. A sum-reduced loss (AWAC's actor) is scaled by m/batch.
base, adam    no SAM: the base optimizer alone (optim.probe may measure sharpness).

Exact limits (tests/test_sam_variants.py): periodic_sam/looksam with k = 1, gsam with alpha = 0
and msam with m = the batch size are SAM bitwise; every name at rho = 0 is the base optimizer
bitwise (at rho_t = 0 g_s == g exactly, so the GSAM/LookSAM corrections are zero and skipped,
and msam takes the unchunked step).

Common keys (every variant; SAMFactory fields; names.COMMON_PARAMS): rho_schedule,
warmup_steps, rho_min, weight_decay_mode. Sharpness metrics (`<net>_sharpness`,
`<net>_loss_perturbed`, `<net>_grad_norm`) are reported on the steps that measure them: every
step, or every k-th for periodic_sam/looksam; msam reports the means over its chunks.

This module imports no torch (configs are checked without it): the hooks that compute import
it when they first run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from samrl.sam.strategy import (
    Param,
    SAMStepHost,
    SAMVariant,
    check_fraction,
    check_integer,
    fail,
    register_variant,
    variant_class,
    variant_names,
)

if TYPE_CHECKING:
    import torch

    from samrl.sam.tape import RecordedCall


def _check_k(value: Any) -> None:
    check_integer(value, "k", 1)


def _check_alpha(value: Any) -> None:
    check_fraction(value, "alpha")


def _check_m(value: Any) -> None:
    check_integer(value, "m", 0)
    if value < 1:
        raise fail("m", f"msam needs the chunk size m (rows per perturbation, >= 1), got {value}")


_K = Param("k", "a SAM step every k-th update", default=1, check=_check_k)


@register_variant
class SAM(SAMVariant):
    name = "sam"
    label = "SAM"
    summary = "SAM (Foret et al. 2021): step with g(w + eps), eps = rho g/‖g‖"
    probe_compatible = True


@register_variant
class ASAM(SAM):
    name = "asam"
    label = "ASAM"
    summary = "ASAM (Kwon et al. 2021): eps = rho T²g/‖Tg‖, T = \\|w\\| (rho 0.5–2)"
    adaptive = True


@register_variant
class PeriodicSAM(SAMVariant):
    name = "periodic_sam"
    summary = "the SAM step every k-th update, plain base steps in between"
    params = (_K,)
    k: int

    def sam_due(self, index: int) -> bool:
        return index % self.k == 0


@register_variant
class LookSAM(PeriodicSAM):
    name = "looksam"
    summary = "LookSAM (Liu et al. 2022): in between, g + alpha‖g‖/‖g_v‖ g_v with the stored g_v"
    params = (_K, Param("alpha", "weight of the stored direction", 0.7, _check_alpha))
    alpha: float

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        # g_v, one entry per parameter of the optimizer (None: no gradient at that SAM step)
        self.direction: list[torch.Tensor | None] | None = None
        self._unit: list[torch.Tensor | None] | None = None  # alpha g_v/||g_v||, cached

    def combine(
        self, opt: SAMStepHost, params: list[torch.nn.Parameter], g: list[torch.Tensor], rho: float
    ) -> None:
        """Store g_v = g_s - (g.g_s/||g||^2) g, the part of g_s orthogonal to g; step with g_s."""
        from samrl.sam.perturbation import orthogonal_part

        self._unit = None
        if rho <= 0.0:  # g_s == g bitwise: no direction to reuse
            self.direction = None
            return
        g_v = orthogonal_part([p.grad for p in params], g)  # type: ignore[misc]
        by_param = {id(p): v for p, v in zip(params, g_v, strict=True)}
        self.direction = [by_param.get(id(p)) for p in opt.parameters]

    def between(self, opt: SAMStepHost) -> None:
        """g + alpha ||g||/||g_v|| g_v."""
        if self.direction is None:
            return
        import torch

        from samrl.sam.perturbation import NORM_EPS, global_norm

        # alpha g_v/||g_v|| is the same on every step until the next SAM step: computed once.
        if self._unit is None:
            stored = [v for v in self.direction if v is not None]
            if not stored:
                return
            scale = self.alpha / (global_norm(stored) + NORM_EPS)
            self._unit = [None if v is None else v * scale for v in self.direction]
        grads, units = [], []
        for p, u in zip(opt.parameters, self._unit, strict=True):
            if p.grad is not None and u is not None:
                grads.append(p.grad)
                units.append(u)
        if grads:
            grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            torch._foreach_add_(grads, torch._foreach_mul(units, grad_norm))

    def state_dict(self, opt: SAMStepHost) -> dict[str, Any]:
        return {} if self.direction is None else {"samrl_looksam_direction": self.direction}

    def load_state_dict(self, opt: SAMStepHost, state: Mapping[str, Any]) -> None:
        direction = state.get("samrl_looksam_direction")
        if direction is not None:
            direction = [
                None if v is None else v.to(p.device)
                for v, p in zip(direction, opt.parameters, strict=True)
            ]
        self.direction = direction
        self._unit = None


@register_variant
class GSAM(SAMVariant):
    name = "gsam"
    label = "GSAM"
    summary = "GSAM (Zhuang et al. 2022): g_s − alpha g⊥, g⊥ the part of g(w) orthogonal to g_s"
    params = (Param("alpha", "weight of the surrogate-gap correction", 0.1, _check_alpha),)
    alpha: float

    def combine(
        self, opt: SAMStepHost, params: list[torch.nn.Parameter], g: list[torch.Tensor], rho: float
    ) -> None:
        """Descend the surrogate gap h = L(w+eps) - L(w) orthogonally to g_s, which leaves
        L(w+eps) unchanged to first order: g_s - alpha g_perp, g_perp = g - proj_g_s g
        (Zhuang et al. 2022, Alg. 1; the official gsam.py subtracts alpha * vertical)."""
        # At alpha = 0 or rho = 0 (g_s == g bitwise) the correction is exactly zero: skipped.
        if self.alpha <= 0.0 or rho <= 0.0:
            return
        import torch

        from samrl.sam.perturbation import orthogonal_part

        g_s = [p.grad for p in params]
        g_perp = orthogonal_part(g, g_s)  # type: ignore[arg-type]
        torch._foreach_add_(g_s, g_perp, alpha=-self.alpha)  # type: ignore[arg-type]


@register_variant
class MSAM(SAMVariant):
    name = "msam"
    label = "MSAM"
    summary = "m-sharpness: per chunk of m rows its own eps; the mean of the chunk SAM gradients"
    params = (Param("m", "rows per chunk (must divide the minibatch size)", check=_check_m),)
    m: int

    @classmethod
    def check_batch_size(cls, values: Mapping[str, Any], batch_size: int) -> None:
        m = values["m"]
        if batch_size % m != 0:
            message = f"must divide the minibatch size {batch_size} (algo.params.batch_size)"
            raise fail("m", f"{message}, got {m}")

    def chunks(self, call: RecordedCall, rho: float) -> list[RecordedCall]:
        """Chunks of m rows, each perturbed along its own g_c (Foret et al.); the step uses the
        mean of their g_s,c. At rho = 0 the unchunked call: the base optimizer bitwise."""
        from samrl.sam.chunks import split_call

        return split_call(call, self.m) if rho > 0.0 else [call]


# ---------------------------------------------------------------------------------------------
# The names result tables use (samrl/sam/names.py holds optim.name's meaning and its documentation).

#: Names meaning "no SAM, the base optimizer (optim.base) alone".
BASE_NAMES = ("base", "adam")


def display_name(name: str) -> str:
    """An optim.name as result tables show it (a name no longer registered: itself)."""
    return (name in variant_names() and variant_class(name).label) or name


def is_base(name: object) -> bool:
    """Whether an optim.name means the base optimizer alone (no SAM)."""
    return name in BASE_NAMES
