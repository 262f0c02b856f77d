"""The SAM optimizer wrapper: one d3rlpy OptimizerWrapper whose step() is the SAM update.

step() runs after the algorithm's own gradient call has left g(w) in .grad and reads top to
bottom as SAM does (its docstring has the steps): ascend, evaluate at w + eps through the
recorded call, restore w, step the base optimizer. Its variant (strategy.py, variants.py) hooks
in: whether this update is a SAM step (`sam_due`), the ascent (`ascent`; ASAM's ball), the parts
of the call (`chunks`; m-sharpness), what the base optimizer steps with (`combine`; GSAM,
LookSAM) and updates that are not SAM steps (`between`). rho_t comes from the radius schedule
(schedules.py); the pass at w + eps is engine.py's `evaluate` (RNG and nested scalar steps
replayed, outputs eps cannot change reused: the one seam over tape.py and reuse.py).
weight_decay_mode "loss": wd w is part of g, wd (w + eps) part of g_s, whatever the variant.
The probes (probe_every, fixed_rho) measure L(w + eps) forward only, beside any variant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import torch
from d3rlpy.optimizers import OptimizerWrapper

from samrl.metrics import (
    FIXED_RADIUS_METRICS,
    GRAD_COSINE,
    GRAD_NORM,
    LOSS_PERTURBED,
    SHARPNESS,
    fixed_radius_prefix,
    metric_name,
)
from samrl.sam.perturbation import NORM_EPS, ascent_direction, dot, global_norm
from samrl.sam.schedules import RhoSchedule, lr_range
from samrl.sam.strategy import SAMVariant
from samrl.sam.variants import SAM

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
    """Wraps the base optimizer's OptimizerWrapper; state_dict and clipping are the base's.

    The methods without an underscore below `step` are what a variant's hooks use.
    """

    def __init__(
        self,
        base: OptimizerWrapper,
        *,
        rho: float,
        adaptive: bool,
        probe_every: int,
        variant: SAMVariant | None = None,
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
        self.variant = variant if variant is not None else SAM()
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
        # weight_decay_mode "loss", during one step: parameter id -> its group's weight decay
        self._l2: dict[int, float] | None = None
        # cos(g(w), g(w + eps)) of each perturbed gradient since the last report
        self._cosines: list[torch.Tensor] = []

    @property
    def probing(self) -> bool:
        return self.probe_every > 0

    @property
    def parameters(self) -> list[torch.nn.Parameter]:
        """Every parameter of this optimizer, in its order (gradient or not)."""
        return self._params  # type: ignore[return-value]

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
        return self.variant.sam_due(self._steps)

    def step(self) -> None:
        """One update, as SAM reads (Foret et al. 2021; /work/shared/DESIGN.md section 2).

        g(w) is in .grad: the algorithm's own gradient call just ran, and the tape remembers it
        (function, minibatch, RNG state). On a SAM step, for each part of that call (the call
        itself; m-sharpness: its chunks, each with its own g(w) first):
          1. ascend: eps = rho_t g/||g|| on this optimizer's parameters (variant.ascent; ASAM's
             ball rho_t T^2 g/||T g||, T = |w|);
          2. evaluate L(w + eps) and g_s = g(w + eps) through the remembered call: same
             minibatch, RNG replayed, nested scalar steps replayed, outputs eps cannot change
             reused (engine.py's evaluate, the one seam over the tape and reuse.py);
          3. w is restored bitwise (by evaluate); the variant may combine g and g_s (GSAM,
             LookSAM: variant.combine);
        then 4. the base optimizer (clipping, step, lr scheduler) steps once with .grad (the mean
        over the parts). An update that is not a SAM step goes to variant.between instead.
        """
        self._check_attached()
        index = self._steps
        self._steps += 1
        if self.probing:  # measure L(w + eps) forward only; the base optimizer steps with g(w)
            if index % self.probe_every == 0:
                self._probe(self._current_call())
            super().step()
            return
        if self._fixed_due(index):  # before anything is added to g(w)
            self._fixed_probe(self._current_call())
        with self._weight_decay_in_loss() as in_loss:
            if not self.variant.sam_due(index):
                self.variant.between(self)
            else:
                call, rho = self._current_call(), self.rho_at(index)
                params = self.params_with_grad()
                parts = self.variant.chunks(call, rho)
                losses, perturbed, norms, sums = [], [], [], _GradientSum(params, len(parts))
                for part in parts:
                    losses.append(call.loss if part is call else self._gradient_at_w(part, params))
                    g = [p.grad.detach().clone() for p in params]  # type: ignore[union-attr]
                    eps, grad_norm = self.variant.ascent(params, g, rho, self.adaptive)  # 1
                    perturbed.append(self.evaluate(part, params, eps))  # 2, and 3: w restored
                    self._note_cosine(g, [p.grad.detach() for p in params], grad_norm)  # type: ignore[union-attr]
                    self.add_l2(params, eps)
                    self.variant.combine(self, params, g, rho)
                    norms.append(grad_norm)
                    sums.add(params)
                sums.mean_into(params)
                self.report(call, _mean(perturbed), _mean(norms), loss=_mean(losses))
        with _no_weight_decay(self._optim) if in_loss else contextlib.nullcontext():
            super().step()  # 4

    def rho_at(self, index: int) -> float:
        """The radius of this optimizer's step number `index` (from 0)."""
        if self.schedule.kind == "lr_proportional":
            return self.schedule.value(index, *lr_range(self._optim, self._lr_scheduler))
        return self.schedule.value(index)

    def state_dict(self) -> Mapping[str, Any]:
        # The step counter decides which steps a probe measures; resume must continue it.
        return {
            **super().state_dict(),
            "samrl_steps": self._steps,
            **self.variant.state_dict(self),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._steps = int(state_dict.get("samrl_steps", 0))
        self.variant.load_state_dict(self, state_dict)

    # -- for the variants' hooks ----------------------------------------------------------------

    def params_with_grad(self) -> list[torch.nn.Parameter]:
        return [p for p in self._params if p.grad is not None]

    def evaluate(
        self, call: RecordedCall, params: list[torch.nn.Parameter], eps: list[torch.Tensor]
    ) -> torch.Tensor:
        """The loss of `call` at w + eps, its gradient left in .grad; w restored."""
        return self._evaluate(call, params, eps)  # type: ignore[misc]

    def add_l2(self, params: list[torch.nn.Parameter], eps: list[torch.Tensor] | None) -> None:
        """weight_decay_mode "loss": .grad += wd (w + eps), the gradient of the loss's L2 term
        wd/2 ||w||^2 at w + eps (eps None: at w). Nothing in mode "decoupled"."""
        l2 = self._l2
        if l2 is None:
            return
        with torch.no_grad():
            for i, p in enumerate(params):
                wd = l2.get(id(p), 0.0)
                if wd != 0.0:
                    point = p if eps is None else p + eps[i]
                    p.grad.add_(point, alpha=wd)  # type: ignore[union-attr]

    def report(
        self,
        call: RecordedCall,
        loss_perturbed: torch.Tensor,
        grad_norm: torch.Tensor,
        loss: torch.Tensor | None = None,
    ) -> None:
        """Sharpness L(w+eps) - L(w) of the algorithm's own loss (never the L2 term); `loss`:
        L(w) when not the call's own (m-sharpness: the mean over chunks)."""
        assert self._tape is not None
        if loss is None:
            assert call.loss is not None
            loss = call.loss
        values = {SHARPNESS: loss_perturbed - loss, LOSS_PERTURBED: loss_perturbed}
        values[GRAD_NORM] = grad_norm.detach()
        if self._cosines:  # the SAM steps (not a probe): mean over chunks in MSAM
            values[GRAD_COSINE] = torch.stack(self._cosines).mean()
            self._cosines.clear()
        for metric, value in values.items():
            self._tape.add_metric(metric_name(self.net_name, metric), value)

    # -- internals ------------------------------------------------------------------------------

    def _check_attached(self) -> None:
        if self._tape is None or self._evaluate is None:
            raise RuntimeError(
                "a SAM optimizer stepped before samrl.sam.install(algo) was called on its "
                "algorithm (call it after build_with_dataset / load_learnable)"
            )

    @contextmanager
    def _weight_decay_in_loss(self) -> Iterator[bool]:
        """weight_decay_mode "loss": wd w joins g(w) for this step (and wd (w + eps) joins g_s,
        add_l2); yields whether it does, so the base step then leaves its own decay out."""
        self._l2 = l2 = self._l2_coefficients()
        try:
            if l2 is not None:
                self.add_l2(self.params_with_grad(), None)
            yield l2 is not None
        finally:
            self._l2 = None

    def _gradient_at_w(self, call: RecordedCall, params: list[torch.nn.Parameter]) -> torch.Tensor:
        """L(w) of a part of the recorded call (an m-sharpness chunk), its g(w) into .grad."""
        loss = self.evaluate(call, params, [torch.zeros_like(p) for p in params])
        self.add_l2(params, None)
        return loss

    def _note_cosine(
        self, g: list[torch.Tensor], g_s: list[torch.Tensor], grad_norm: torch.Tensor
    ) -> None:
        """cos(g(w), g(w + eps)), reported (averaged) with the step's sharpness."""
        self._cosines.append(dot(g, g_s) / (grad_norm * global_norm(g_s) + NORM_EPS))

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

    def _l2_coefficients(self) -> dict[int, float] | None:
        """weight_decay_mode "loss": parameter id -> its group's weight decay; None otherwise."""
        if self.weight_decay_mode != "loss":
            return None
        return {
            id(p): float(group.get("weight_decay", 0.0))
            for group in self._optim.param_groups
            for p in group["params"]
        }

    def _fixed_due(self, index: int) -> bool:
        # In probe mode at the same radius, _probe's measurement is the fixed-radius one.
        return self.fixed_every > 0 and not self.probing and index % self.fixed_every == 0

    def _fixed_probe(self, call: RecordedCall) -> None:
        """Sharpness at fixed_rho beside the SAM step: forward only, .grad keeps g(w)."""
        assert self.fixed_rho is not None
        params = self.params_with_grad()
        grads = [p.grad for p in params]
        # Plain SAM's ball even for ASAM runs: the one measurement every run shares.
        eps, _ = ascent_direction(params, grads, self.fixed_rho, False)  # type: ignore[arg-type]
        loss_perturbed = self._evaluate(call, params, eps, forward_only=True)  # type: ignore[misc]
        self._report_fixed(call, loss_perturbed)

    def _report_fixed(self, call: RecordedCall, loss_perturbed: torch.Tensor) -> None:
        assert self._tape is not None and call.loss is not None and self.fixed_rho is not None
        prefix = fixed_radius_prefix(self.net_name, self.fixed_rho)
        values = {SHARPNESS: loss_perturbed - call.loss, LOSS_PERTURBED: loss_perturbed}
        for metric in FIXED_RADIUS_METRICS:
            self._tape.add_metric(metric_name(prefix, metric), values[metric])

    def _probe(self, call: RecordedCall) -> None:
        """Measure sharpness at radius rho, then put g(w) back: the update stays the base one."""
        params = self.params_with_grad()
        grads = [p.grad for p in params]
        eps, grad_norm = ascent_direction(params, grads, self.rho, self.adaptive)  # type: ignore[arg-type]
        # Forward only: .grad keeps g(w), which the base optimizer then uses.
        loss_perturbed = self._evaluate(call, params, eps, forward_only=True)  # type: ignore[misc]
        self.report(call, loss_perturbed, grad_norm)
        if self.fixed_rho == self.rho:  # the same numbers under the sweep-wide column names
            self._report_fixed(call, loss_perturbed)


class _GradientSum:
    """The mean of the parts' SAM gradients (m-sharpness); one part: its gradient as it is."""

    def __init__(self, params: list[torch.nn.Parameter], parts: int):
        self.parts = parts
        self.total = [torch.zeros_like(p) for p in params] if parts > 1 else []

    def add(self, params: list[torch.nn.Parameter]) -> None:
        if self.parts > 1:
            for t, p in zip(self.total, params, strict=True):
                t.add_(p.grad)  # type: ignore[arg-type]

    def mean_into(self, params: list[torch.nn.Parameter]) -> None:
        if self.parts > 1:
            with torch.no_grad():
                for p, t in zip(params, self.total, strict=True):
                    p.grad.copy_(t.div_(self.parts))  # type: ignore[union-attr]


def _mean(values: list[torch.Tensor]) -> torch.Tensor:
    """The mean over the parts of a step; one part: the value itself, bit for bit."""
    return values[0] if len(values) == 1 else torch.stack(values).mean()


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
