"""The SAM optimizer wrapper: one d3rlpy OptimizerWrapper whose step() performs the SAM update.

step() runs after the algorithm's own gradient call has left g(w) in .grad:
  1. eps = rho g/||g|| (ASAM: rho T^2 g/||T g||) on this optimizer's parameters only;
  2. the recorded gradient call again at w + eps, same minibatch, same random draws, nested
     scalar optimizers replayed (see engine.py);
  3. w restored bitwise, then the base optimizer (clipping, step, scheduler) steps once.

The variants (variants.py) are options of this one step:
  - rho_t from a schedule (schedules.py) instead of rho;
  - periodic_sam/looksam: steps 1-2 only every k-th step; looksam adds its stored direction
    to g(w) in between;
  - gsam: after step 2, .grad = g_s - alpha (g - (g.g_s/||g_s||^2) g_s);
  - msam: steps 1-2 per chunk of m rows (chunks.py), .grad = the mean of the chunk g_s;
  - weight_decay_mode "loss": wd w is part of g, wd (w + eps) part of g_s.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import torch
from d3rlpy.optimizers import OptimizerWrapper

from samrl.sam.chunks import split_call
from samrl.sam.perturbation import NORM_EPS, ascent_direction, global_norm, orthogonal_part
from samrl.sam.schedules import RhoSchedule, lr_range
from samrl.sam.variants import fixed_radius_name

if TYPE_CHECKING:
    from samrl.sam.tape import RecordedCall, Tape

WEIGHT_DECAY_MODES = ("decoupled", "loss")


class EvaluateFn(Protocol):
    """Loss (and gradient, left in .grad) of a recorded call at w + eps; w restored after."""

    def __call__(
        self,
        call: RecordedCall,
        params: list[torch.nn.Parameter],
        eps: list[torch.Tensor],
        *,
        forward_only: bool = False,
    ) -> torch.Tensor: ...


class SAMOptimizerWrapper(OptimizerWrapper):
    """Wraps the base optimizer's OptimizerWrapper; state_dict and clipping are the base's."""

    def __init__(
        self,
        base: OptimizerWrapper,
        *,
        rho: float,
        adaptive: bool,
        probe_every: int,
        variant: str = "sam",
        k: int = 1,
        alpha: float = 0.0,
        m: int = 0,
        schedule: RhoSchedule | None = None,
        weight_decay_mode: str = "decoupled",
        fixed_rho: float | None = None,
        fixed_every: int = 0,
    ):
        super().__init__(
            params=base._params,
            optim=base._optim,
            compiled=base._compiled,
            clip_grad_norm=base._clip_grad_norm,
            lr_scheduler=base._lr_scheduler,
        )
        self.rho = rho
        self.adaptive = adaptive
        self.probe_every = probe_every
        self.variant = variant
        self.k = k
        self.alpha = alpha
        self.m = m
        self.schedule = schedule or RhoSchedule("constant", rho)
        self.weight_decay_mode = weight_decay_mode
        # The fixed-radius probe: L(w + eps) - L(w) at radius fixed_rho every fixed_every
        # steps, forward only, beside whatever this optimizer trains with (trajectory unchanged).
        self.fixed_rho = fixed_rho
        self.fixed_every = fixed_every if fixed_rho is not None else 0
        self.net_name = "?"
        self._tape: Tape | None = None
        self._evaluate: EvaluateFn | None = None
        self._steps = 0
        # LookSAM's stored g_v, one entry per parameter (None: no gradient at that SAM step).
        self._looksam_direction: list[torch.Tensor | None] | None = None
        self._looksam_unit: list[torch.Tensor | None] | None = None  # alpha g_v/||g_v||

    @property
    def probing(self) -> bool:
        return self.probe_every > 0

    def attach(self, tape: Tape, net_name: str, evaluate: EvaluateFn) -> None:
        self._tape = tape
        self.net_name = net_name
        self._evaluate = evaluate

    def zero_grad(self) -> None:
        if self._tape is not None:
            if self._tape.forward_only:  # a probe's pass 2 keeps g(w) for the base step
                return
            if self._tape.active is not None:
                self._tape.active.zeroed.append(self)
        super().zero_grad()

    def measures_next_step(self) -> bool:
        """Whether the next step() evaluates L(w + eps) (and so needs the recorded call)."""
        if self._fixed_due(self._steps):
            return True
        if self.probing:
            return self._steps % self.probe_every == 0
        return self._steps % self.k == 0

    def step(self) -> None:
        if self._tape is None or self._evaluate is None:
            raise RuntimeError(
                "a SAM optimizer stepped before samrl.sam.install(algo) was called on its "
                "algorithm (call it after build_with_dataset / load_learnable)"
            )
        index = self._steps
        self._steps += 1
        if self.probing:
            if index % self.probe_every == 0:
                self._probe(self._current_call())
            super().step()
            return
        if self._fixed_due(index):  # before anything is added to g(w)
            self._fixed_probe(self._current_call())
        l2 = self._l2_coefficients()
        if l2 is not None:
            self._add_l2(l2, self._params_with_grad(), None)
        if index % self.k == 0:
            self._sam_step(self._current_call(), self.rho_at(index), l2)
        elif self._looksam_direction is not None:
            self._add_looksam_direction()
        if l2 is None:
            super().step()
        else:
            with _no_weight_decay(self._optim):
                super().step()

    def rho_at(self, index: int) -> float:
        """The radius of this optimizer's step number `index` (from 0)."""
        if self.schedule.kind == "lr_proportional":
            return self.schedule.value(index, *lr_range(self._optim, self._lr_scheduler))
        return self.schedule.value(index)

    def state_dict(self) -> Mapping[str, Any]:
        # The step counter decides which steps a probe measures; resume must continue it.
        state: dict[str, Any] = {**super().state_dict(), "samrl_steps": self._steps}
        if self._looksam_direction is not None:
            state["samrl_looksam_direction"] = self._looksam_direction
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._steps = int(state_dict.get("samrl_steps", 0))
        direction = state_dict.get("samrl_looksam_direction")
        if direction is not None:
            direction = [
                None if v is None else v.to(p.device)
                for v, p in zip(direction, self._params, strict=True)
            ]
        self._looksam_direction = direction
        self._looksam_unit = None

    def _current_call(self) -> RecordedCall:
        assert self._tape is not None
        call = self._tape.last
        if call is None or not any(z is self for z in call.zeroed):
            raise RuntimeError(
                f"SAM optimizer '{self.net_name}' stepped without a preceding recorded gradient "
                "call that zero-graded it; this algorithm does not follow d3rlpy's "
                "compute_*_grad/step convention"
            )
        return call

    def _params_with_grad(self) -> list[torch.nn.Parameter]:
        return [p for p in self._params if p.grad is not None]

    def _sam_step(self, call: RecordedCall, rho: float, l2: dict[int, float] | None) -> None:
        params = self._params_with_grad()
        if self.variant == "msam" and rho > 0.0:
            chunks = split_call(call, self.m)
            if len(chunks) > 1:
                self._chunked_sam_step(chunks, params, rho, l2)
                return
        grads = [p.grad for p in params]
        # GSAM/LookSAM combine g(w) with g_s; pass 2 overwrites .grad, so keep a copy.
        # At rho = 0, g_s == g bitwise and both corrections are exactly zero: skipped.
        gsam = self.variant == "gsam" and self.alpha > 0.0
        combine = (gsam or self.variant == "looksam") and rho > 0.0
        g = [t.detach().clone() for t in grads] if combine else None  # type: ignore[union-attr]
        eps, grad_norm = ascent_direction(params, grads, rho, self.adaptive)  # type: ignore[arg-type]
        loss_perturbed = self._evaluate(call, params, eps)  # type: ignore[misc]
        if l2 is not None:
            self._add_l2(l2, params, eps)
        if gsam and g is not None:
            self._gsam_correction(params, g)
        elif self.variant == "looksam":
            self._store_looksam_direction(params, g)
        self._report(call, loss_perturbed, grad_norm)

    def _gsam_correction(self, params: list[torch.nn.Parameter], g: list[torch.Tensor]) -> None:
        """GSAM: descend the surrogate gap h = L(w+eps) - L(w) orthogonally to g_s, which
        leaves L(w+eps) unchanged to first order: g_s - alpha g_perp, g_perp = g - proj_g_s g
        (Zhuang et al. 2022, Alg. 1; the official gsam.py subtracts alpha * vertical)."""
        g_s = [p.grad for p in params]
        g_perp = orthogonal_part(g, g_s)  # type: ignore[arg-type]
        torch._foreach_add_(g_s, g_perp, alpha=-self.alpha)  # type: ignore[arg-type]

    def _store_looksam_direction(
        self, params: list[torch.nn.Parameter], g: list[torch.Tensor] | None
    ) -> None:
        """LookSAM: g_v = g_s - (g.g_s/||g||^2) g, the part of g_s orthogonal to g."""
        self._looksam_unit = None
        if g is None:  # rho = 0: g_s == g, no direction to reuse
            self._looksam_direction = None
            return
        g_v = orthogonal_part([p.grad for p in params], g)  # type: ignore[misc]
        by_param = {id(p): v for p, v in zip(params, g_v, strict=True)}
        self._looksam_direction = [by_param.get(id(p)) for p in self._params]

    def _add_looksam_direction(self) -> None:
        """LookSAM between SAM steps: g + alpha ||g||/||g_v|| g_v."""
        assert self._looksam_direction is not None
        # alpha g_v/||g_v|| is the same on every step until the next SAM step: computed once.
        if self._looksam_unit is None:
            stored = [v for v in self._looksam_direction if v is not None]
            if not stored:
                return
            scale = self.alpha / (global_norm(stored) + NORM_EPS)
            self._looksam_unit = [None if v is None else v * scale for v in self._looksam_direction]
        grads, units = [], []
        for p, u in zip(self._params, self._looksam_unit, strict=True):
            if p.grad is not None and u is not None:
                grads.append(p.grad)
                units.append(u)
        if grads:
            grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            torch._foreach_add_(grads, torch._foreach_mul(units, grad_norm))

    def _chunked_sam_step(
        self,
        chunks: list[RecordedCall],
        params: list[torch.nn.Parameter],
        rho: float,
        l2: dict[int, float] | None,
    ) -> None:
        """m-sharpness: per chunk c, g_c at w, eps_c = rho g_c/||g_c|| (Foret et al.: each chunk
        perturbs along its own gradient), g_s,c at w + eps_c; .grad = mean over chunks."""
        assert self._evaluate is not None
        zeros = [torch.zeros_like(p) for p in params]
        total = [torch.zeros_like(p) for p in params]
        losses, perturbed, norms = [], [], []
        for chunk in chunks:
            losses.append(self._evaluate(chunk, params, zeros))  # g_c in .grad
            if l2 is not None:
                self._add_l2(l2, params, None)
            grads = [p.grad for p in params]
            eps, grad_norm = ascent_direction(params, grads, rho, self.adaptive)  # type: ignore[arg-type]
            perturbed.append(self._evaluate(chunk, params, eps))
            if l2 is not None:
                self._add_l2(l2, params, eps)
            norms.append(grad_norm)
            for t, p in zip(total, params, strict=True):
                t.add_(p.grad)  # type: ignore[arg-type]
        with torch.no_grad():
            for p, t in zip(params, total, strict=True):
                p.grad.copy_(t.div_(len(chunks)))  # type: ignore[union-attr]
        self._report(chunks[0], _mean(perturbed), _mean(norms), loss=_mean(losses))

    def _l2_coefficients(self) -> dict[int, float] | None:
        """weight_decay_mode "loss": parameter id -> its group's weight decay; None otherwise."""
        if self.weight_decay_mode != "loss":
            return None
        return {
            id(p): float(group.get("weight_decay", 0.0))
            for group in self._optim.param_groups
            for p in group["params"]
        }

    @staticmethod
    def _add_l2(
        l2: dict[int, float], params: list[torch.nn.Parameter], eps: list[torch.Tensor] | None
    ) -> None:
        """.grad += wd (w + eps): the gradient of the loss's L2 term wd/2 ||w||^2 at w + eps."""
        with torch.no_grad():
            for i, p in enumerate(params):
                wd = l2.get(id(p), 0.0)
                if wd != 0.0:
                    point = p if eps is None else p + eps[i]
                    p.grad.add_(point, alpha=wd)  # type: ignore[union-attr]

    def _fixed_due(self, index: int) -> bool:
        # In probe mode at the same radius, _probe's measurement is the fixed-radius one.
        return self.fixed_every > 0 and not self.probing and index % self.fixed_every == 0

    def _fixed_probe(self, call: RecordedCall) -> None:
        """Sharpness at fixed_rho beside the SAM step: forward only, .grad keeps g(w)."""
        assert self.fixed_rho is not None
        params = self._params_with_grad()
        grads = [p.grad for p in params]
        # Plain SAM's ball even for ASAM runs: the one measurement every run shares.
        eps, _ = ascent_direction(params, grads, self.fixed_rho, False)  # type: ignore[arg-type]
        loss_perturbed = self._evaluate(call, params, eps, forward_only=True)  # type: ignore[misc]
        self._report_fixed(call, loss_perturbed)

    def _report_fixed(self, call: RecordedCall, loss_perturbed: torch.Tensor) -> None:
        assert self._tape is not None and call.loss is not None and self.fixed_rho is not None
        name = fixed_radius_name(self.net_name, self.fixed_rho)
        self._tape.add_metric(f"{name}_sharpness", loss_perturbed - call.loss)
        self._tape.add_metric(f"{name}_loss_perturbed", loss_perturbed)

    def _probe(self, call: RecordedCall) -> None:
        """Measure sharpness at radius rho, then put g(w) back: the update stays the base one."""
        params = self._params_with_grad()
        grads = [p.grad for p in params]
        eps, grad_norm = ascent_direction(params, grads, self.rho, self.adaptive)  # type: ignore[arg-type]
        # Forward only: .grad keeps g(w), which the base optimizer then uses.
        loss_perturbed = self._evaluate(call, params, eps, forward_only=True)  # type: ignore[misc]
        self._report(call, loss_perturbed, grad_norm)
        if self.fixed_rho == self.rho:  # the same numbers under the sweep-wide column names
            self._report_fixed(call, loss_perturbed)

    def _report(
        self,
        call: RecordedCall,
        loss_perturbed: torch.Tensor,
        grad_norm: torch.Tensor,
        loss: torch.Tensor | None = None,
    ) -> None:
        """Sharpness L(w+eps) - L(w) of the algorithm's own loss (never the L2 term)."""
        assert self._tape is not None
        if loss is None:
            assert call.loss is not None
            loss = call.loss
        self._tape.add_metric(f"{self.net_name}_sharpness", loss_perturbed - loss)
        self._tape.add_metric(f"{self.net_name}_loss_perturbed", loss_perturbed)
        self._tape.add_metric(f"{self.net_name}_grad_norm", grad_norm.detach())


def _mean(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(values).mean()


@contextmanager
def _no_weight_decay(optim: torch.optim.Optimizer) -> Iterator[None]:
    """The base step without its own decay: in weight_decay_mode "loss" it is in the gradient."""
    saved = [group.get("weight_decay") for group in optim.param_groups]
    for group in optim.param_groups:
        if "weight_decay" in group:
            group["weight_decay"] = 0.0
    try:
        yield
    finally:
        for group, value in zip(optim.param_groups, saved, strict=True):
            if value is not None:
                group["weight_decay"] = value
