"""The SAM optimizer wrapper: one d3rlpy OptimizerWrapper whose step() performs the SAM update.

step() runs after the algorithm's own gradient call has left g(w) in .grad:
  1. eps = rho g/||g|| (ASAM: rho T^2 g/||T g||) on this optimizer's parameters only;
  2. the recorded gradient call again at w + eps, same minibatch, same random draws, nested
     scalar optimizers replayed (see engine.py);
  3. w restored bitwise, then the base optimizer (clipping, step, scheduler) steps once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import torch
from d3rlpy.optimizers import OptimizerWrapper

from samrl.sam.perturbation import ascent_direction

if TYPE_CHECKING:
    from samrl.sam.tape import RecordedCall, Tape


class EvaluateFn(Protocol):
    """Loss (and gradient, left in .grad) of a recorded call at w + eps; w restored after."""

    def __call__(
        self, call: RecordedCall, params: list[torch.nn.Parameter], eps: list[torch.Tensor]
    ) -> torch.Tensor: ...


class SAMOptimizerWrapper(OptimizerWrapper):
    """Wraps the base optimizer's OptimizerWrapper; state_dict and clipping are the base's."""

    def __init__(self, base: OptimizerWrapper, *, rho: float, adaptive: bool, probe_every: int):
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
        self.net_name = "?"
        self._tape: Tape | None = None
        self._evaluate: EvaluateFn | None = None
        self._steps = 0

    @property
    def probing(self) -> bool:
        return self.probe_every > 0

    def attach(self, tape: Tape, net_name: str, evaluate: EvaluateFn) -> None:
        self._tape = tape
        self.net_name = net_name
        self._evaluate = evaluate

    def zero_grad(self) -> None:
        if self._tape is not None and self._tape.active is not None:
            self._tape.active.zeroed.append(self)
        super().zero_grad()

    def step(self) -> None:
        if self._tape is None or self._evaluate is None:
            raise RuntimeError(
                "a SAM optimizer stepped before samrl.sam.install(algo) was called on its "
                "algorithm (call it after build_with_dataset / load_learnable)"
            )
        index = self._steps
        self._steps += 1
        if not self.probing:
            self._sam_step(self._current_call())
        elif index % self.probe_every == 0:
            self._probe(self._current_call())
        super().step()

    def state_dict(self) -> Mapping[str, Any]:
        # The step counter decides which steps a probe measures; resume must continue it.
        return {**super().state_dict(), "samrl_steps": self._steps}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._steps = int(state_dict.get("samrl_steps", 0))

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

    def _sam_step(self, call: RecordedCall) -> None:
        params = self._params_with_grad()
        grads = [p.grad for p in params]
        eps, grad_norm = ascent_direction(params, grads, self.rho, self.adaptive)  # type: ignore[arg-type]
        loss_perturbed = self._evaluate(call, params, eps)  # type: ignore[misc]
        self._report(call, loss_perturbed, grad_norm)

    def _probe(self, call: RecordedCall) -> None:
        """Measure sharpness at radius rho, then put g(w) back: the update stays the base one."""
        params = self._params_with_grad()
        grads = [p.grad.detach().clone() for p in params]  # type: ignore[union-attr]
        eps, grad_norm = ascent_direction(params, grads, self.rho, self.adaptive)
        loss_perturbed = self._evaluate(call, params, eps)  # type: ignore[misc]
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.grad.copy_(g)  # type: ignore[union-attr]
        self._report(call, loss_perturbed, grad_norm)

    def _report(
        self, call: RecordedCall, loss_perturbed: torch.Tensor, grad_norm: torch.Tensor
    ) -> None:
        assert self._tape is not None and call.loss is not None
        self._tape.add_metric(f"{self.net_name}_sharpness", loss_perturbed - call.loss)
        self._tape.add_metric(f"{self.net_name}_loss_perturbed", loss_perturbed)
        self._tape.add_metric(f"{self.net_name}_grad_norm", grad_norm.detach())
