"""Optimizer names accepted in `optim.name` and how each maps onto SAMFactory fields.

`fixed` are the SAMFactory fields a name implies; `keys` are the extra `optim.<key>` entries the
name accepts (each is a SAMFactory field of the same name). Every variant is an option of the one
SAMOptimizerWrapper step (optimizer.py); its defaults reproduce plain SAM bitwise.

base          no SAM: the base optimizer alone (optim.probe may measure sharpness);
adam          the same (its historical name; kept as an alias, the default).
sam           SAM (Foret et al. 2021): step with g_s = g(w + eps), eps = rho g/||g||.
asam          ASAM (Kwon et al. 2021): the ball scaled elementwise by |w|.
periodic_sam  keys k: SAM every k-th step, the base optimizer's plain step in between.
looksam       keys k, alpha: LookSAM (Liu et al. 2022): SAM every k-th step, which stores
              g_v = g_s - (g.g_s/||g||^2) g (the part of g_s orthogonal to g); in between
              the step uses g + alpha ||g||/||g_v|| g_v.
gsam          keys alpha: GSAM (Zhuang et al. 2022): step with g_s - alpha g_perp, where
              g_perp = g - (g.g_s/||g_s||^2) g_s is the part of g(w) orthogonal to g_s;
              -g_perp is the surrogate gap's gradient orthogonal to g_s, so this descends the
              gap without changing L(w + eps) to first order (official gsam.py's sign).
msam          keys m: m-sharpness (Foret et al. 2021): the minibatch split into chunks of m
              rows; per chunk its own g_c at w, eps_c = rho g_c/||g_c|| and g_s,c at w + eps_c;
              step with the mean of the g_s,c. m must divide the minibatch size. Each chunk
              draws its own noise (chunks.py). Costs the algorithm's own full-batch pass plus
              two passes per chunk. A sum-reduced loss (AWAC's actor) is scaled by m/batch.

Exact limits (tests/test_sam_variants.py): periodic_sam/looksam with k = 1, gsam with alpha = 0
and msam with m = the batch size are SAM bitwise; every name at rho = 0 is the base optimizer
bitwise (at rho_t = 0 g_s == g exactly, so the GSAM/LookSAM corrections are zero and skipped,
and msam takes the unchunked step).

Common keys: rho_schedule (constant | linear_warmup | lr_proportional, default constant),
warmup_steps (linear_warmup), rho_min (default 0), weight_decay_mode (decoupled | loss, default
decoupled). Defaults: k = 1, alpha = 0.7 for looksam (Liu et al.) and 0.1 for gsam; msam needs m.
Sharpness metrics (`<net>_sharpness`, `<net>_loss_perturbed`, `<net>_grad_norm`) are reported on
the steps that measure them: every step, or every k-th for periodic_sam/looksam; msam reports the
means over its chunks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

COMMON_KEYS = ("rho_schedule", "warmup_steps", "rho_min", "weight_decay_mode")
VARIANTS = ("sam", "periodic_sam", "looksam", "gsam", "msam")
# alpha when a looksam/gsam config leaves it out (LookSAM paper: 0.7; GSAM tunes 0.01-0.3).
DEFAULT_ALPHA = {"looksam": 0.7, "gsam": 0.1}


@dataclasses.dataclass(frozen=True)
class OptimizerName:
    sharpness_aware: bool  # False: plain base optimizer (probe allowed)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    keys: tuple[str, ...] = ()


#: Names meaning "no SAM, the base optimizer (optim.base) alone".
BASE_NAMES = ("base", "adam")

OPTIMIZER_NAMES: dict[str, OptimizerName] = {
    **dict.fromkeys(BASE_NAMES, OptimizerName(sharpness_aware=False)),
    "sam": OptimizerName(sharpness_aware=True, keys=COMMON_KEYS),
    "asam": OptimizerName(sharpness_aware=True, fixed={"adaptive": True}, keys=COMMON_KEYS),
    "periodic_sam": OptimizerName(
        sharpness_aware=True, fixed={"variant": "periodic_sam"}, keys=("k", *COMMON_KEYS)
    ),
    "looksam": OptimizerName(
        sharpness_aware=True, fixed={"variant": "looksam"}, keys=("k", "alpha", *COMMON_KEYS)
    ),
    "gsam": OptimizerName(
        sharpness_aware=True, fixed={"variant": "gsam"}, keys=("alpha", *COMMON_KEYS)
    ),
    "msam": OptimizerName(
        sharpness_aware=True, fixed={"variant": "msam"}, keys=("m", *COMMON_KEYS)
    ),
}


def is_base(name: object) -> bool:
    """Whether an optim.name means the base optimizer alone (no SAM)."""
    return name in BASE_NAMES


def fixed_radius_name(net: str, rho: float) -> str:
    """Metric prefix of sharpness measured at one fixed radius (`critic_rho0.05`), the same in
    every run of a rho sweep, whatever radius (if any) the run trains with."""
    return f"{net}_rho{rho:g}"
