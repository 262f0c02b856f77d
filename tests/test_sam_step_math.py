"""One SAM/ASAM step on a toy model equals the update written out by hand; bad input is refused.

The toy model runs the real pieces: SGD through d3rlpy's factory, SAMOptimizerWrapper, the tape
recording the gradient call and the engine's evaluate (pass 2), wired by hand as install() does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from conftest import Toy
from d3rlpy.optimizers import AdamFactory, SGDFactory
from torch import nn

from samrl.sam import SAMFactory, SAMOptimizerWrapper
from samrl.sam.perturbation import ascent_direction

LR = 0.1
RHO = 0.2


def sgd_toy(*, rho: float, adaptive: bool, probe_every: int = 0) -> Toy:
    """The toy model with d3rlpy's SGD wrapped by hand in SAMOptimizerWrapper."""

    def optimizer(model: nn.Module) -> SAMOptimizerWrapper:
        base = SGDFactory().create([("model", model)], lr=LR, compiled=False)
        return SAMOptimizerWrapper(base, rho=rho, adaptive=adaptive, probe_every=probe_every)

    return Toy(optimizer)


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors))  # type: ignore[arg-type]


def _sam_eps(w: list[torch.Tensor], g: list[torch.Tensor]) -> list[torch.Tensor]:
    norm = _norm(g).float()
    return [RHO * gi / norm for gi in g]


def _asam_eps(w: list[torch.Tensor], g: list[torch.Tensor]) -> list[torch.Tensor]:
    norm = _norm([wi.abs() * gi for wi, gi in zip(w, g, strict=True)]).float()
    return [RHO * wi.abs() ** 2 * gi / norm for wi, gi in zip(w, g, strict=True)]


EpsFn = Callable[[list[torch.Tensor], list[torch.Tensor]], list[torch.Tensor]]


@pytest.mark.parametrize(("adaptive", "eps_by_hand"), [(False, _sam_eps), (True, _asam_eps)])
def test_one_step_equals_sgd_on_the_gradient_at_the_perturbed_point(
    adaptive: bool, eps_by_hand: EpsFn
) -> None:
    toy = sgd_toy(rho=RHO, adaptive=adaptive)
    w = toy.weights()
    g = toy.grad_at(w)
    eps = eps_by_hand(w, g)
    w_eps = [wi + ei for wi, ei in zip(w, eps, strict=True)]
    expected = [wi - LR * gi for wi, gi in zip(w, toy.grad_at(w_eps), strict=True)]
    plain_sgd = [wi - LR * gi for wi, gi in zip(w, g, strict=True)]

    toy.compute_grad()
    toy.optim.step()
    metrics = toy.tape.pop_metrics()

    for new, exp, plain in zip(toy.weights(), expected, plain_sgd, strict=True):
        torch.testing.assert_close(new, exp, rtol=1e-6, atol=1e-7)
        assert not torch.allclose(new, plain, rtol=0, atol=1e-6)
    loss_w = float(toy.loss_at(w))
    loss_w_eps = float(toy.loss_at(w_eps))
    assert metrics["toy_loss_perturbed"] == pytest.approx(loss_w_eps, rel=1e-6)
    assert metrics["toy_sharpness"] == pytest.approx(loss_w_eps - loss_w, rel=1e-4, abs=1e-7)
    assert metrics["toy_grad_norm"] == pytest.approx(float(_norm(g)), rel=1e-6)
    assert metrics["toy_sharpness"] > 0.0


@pytest.mark.parametrize(("adaptive", "eps_by_hand"), [(False, _sam_eps), (True, _asam_eps)])
@pytest.mark.parametrize("variant", ["sam", "gsam", "looksam"])
def test_grad_cosine_is_the_cosine_of_the_two_gradients_by_autograd(
    adaptive: bool, eps_by_hand: EpsFn, variant: str
) -> None:
    """`<net>_grad_cosine` = cos(g(w), g(w + eps)), here from two torch.autograd.grad calls on
    a fresh copy of the weights (not the engine's .grad buffers, which pass 2 overwrites in
    place), in double precision; the variants that rewrite .grad after pass 2 report the
    same cosine (of the two gradients, not of their update)."""
    factory = SAMFactory(rho=RHO, adaptive=adaptive, variant=variant)
    toy = Toy(lambda model: factory.create([("model", model)], lr=LR, compiled=False))
    w = toy.weights()
    g = [t.double() for t in toy.grad_at(w)]
    eps = eps_by_hand(w, toy.grad_at(w))
    g_s = [t.double() for t in toy.grad_at([wi + ei for wi, ei in zip(w, eps, strict=True)])]
    dot = sum(float((a * b).sum()) for a, b in zip(g, g_s, strict=True))
    expected = dot / float(_norm(g) * _norm(g_s))

    metrics = toy.update()

    assert metrics["toy_grad_cosine"] == pytest.approx(expected, rel=1e-5)
    assert 0.0 < metrics["toy_grad_cosine"] < 1.0 - 1e-6  # a real turn at rho = 0.2, not 1


def test_grad_cosine_is_one_at_rho_zero_and_absent_from_probes() -> None:
    toy = sgd_toy(rho=0.0, adaptive=False)
    assert toy.update()["toy_grad_cosine"] == pytest.approx(1.0, abs=1e-6)
    probe = sgd_toy(rho=RHO, adaptive=False, probe_every=1)
    measured = probe.update()
    assert "toy_sharpness" in measured and "toy_grad_cosine" not in measured


def test_probe_step_keeps_the_plain_update_and_measures_sharpness() -> None:
    toy = sgd_toy(rho=RHO, adaptive=False, probe_every=1)
    w = toy.weights()
    g = toy.grad_at(w)
    w_eps = [wi + ei for wi, ei in zip(w, _sam_eps(w, g), strict=True)]
    toy.compute_grad()
    toy.optim.step()
    metrics = toy.tape.pop_metrics()
    for new, wi, gi in zip(toy.weights(), w, g, strict=True):
        torch.testing.assert_close(new, wi - LR * gi, rtol=1e-6, atol=1e-7)
    assert metrics["toy_loss_perturbed"] == pytest.approx(float(toy.loss_at(w_eps)), rel=1e-6)


def test_sam_eps_has_norm_rho_along_the_gradient() -> None:
    torch.manual_seed(1)
    params = [torch.randn(4, 3), torch.randn(3)]
    grads = [torch.randn(4, 3), torch.randn(3)]
    eps, grad_norm = ascent_direction(params, grads, RHO, adaptive=False)
    assert float(_norm(eps)) == pytest.approx(RHO, rel=1e-6)
    assert float(grad_norm) == pytest.approx(float(_norm(grads)), rel=1e-6)
    for e, g in zip(eps, grads, strict=True):
        torch.testing.assert_close(e, g * RHO / grad_norm)


def test_asam_eps_is_rho_t_squared_g_over_norm_of_t_g() -> None:
    torch.manual_seed(2)
    params = [torch.randn(4, 3), torch.randn(3)]
    grads = [torch.randn(4, 3), torch.randn(3)]
    eps, _ = ascent_direction(params, grads, RHO, adaptive=True)
    for e, expected in zip(eps, _asam_eps(params, grads), strict=True):
        torch.testing.assert_close(e, expected)
    # the ball is an ellipsoid: ||T^-1 eps|| = rho with T = |w|
    scaled = [e / p.abs() for e, p in zip(eps, params, strict=True)]
    assert float(_norm(scaled)) == pytest.approx(RHO, rel=1e-5)


@pytest.mark.parametrize("adaptive", [False, True])
def test_eps_is_exactly_zero_at_rho_zero_and_finite_for_a_zero_gradient(adaptive: bool) -> None:
    params = [torch.randn(5), torch.randn(2, 2)]
    grads = [torch.randn(5), torch.randn(2, 2)]
    eps, _ = ascent_direction(params, grads, 0.0, adaptive)
    assert all(torch.equal(e, torch.zeros_like(e)) for e in eps)
    zero = [torch.zeros(5), torch.zeros(2, 2)]
    eps, norm = ascent_direction(params, zero, RHO, adaptive)
    assert float(norm) == 0.0
    assert all(torch.equal(e, torch.zeros_like(e)) for e in eps)


def test_step_before_install_is_a_clear_error() -> None:
    model = nn.Linear(2, 1)
    optim = SAMFactory(rho=0.1).create([("m", model)], lr=0.1, compiled=False)
    model(torch.ones(1, 2)).sum().backward()
    with pytest.raises(RuntimeError, match="install"):
        optim.step()


def test_step_without_a_recorded_gradient_call_is_a_clear_error() -> None:
    toy = sgd_toy(rho=RHO, adaptive=False)
    F.mse_loss(toy.model(toy.x), toy.y).backward()  # not through the recorded call
    with pytest.raises(RuntimeError, match="recorded gradient call"):
        toy.optim.step()


@pytest.mark.parametrize("rho", [-0.1, float("nan")])
def test_negative_or_nan_rho_is_refused(rho: float) -> None:
    with pytest.raises(ValueError, match="rho"):
        SAMFactory(rho=rho)


def test_negative_probe_every_is_refused() -> None:
    with pytest.raises(ValueError, match="probe_every"):
        SAMFactory(rho=0.05, probe_every=-1)


def test_sam_as_base_of_sam_is_refused() -> None:
    with pytest.raises(ValueError, match="SAM"):
        SAMFactory(base=SAMFactory(rho=0.05), rho=0.05)


def test_factory_creates_a_sam_wrapper_around_the_base() -> None:
    model = nn.Linear(2, 1)
    factory = SAMFactory(base=AdamFactory(betas=(0.5, 0.6)), rho=0.3, adaptive=True)
    optim = factory.create([("m", model)], lr=0.01, compiled=False)
    assert isinstance(optim, SAMOptimizerWrapper)
    assert isinstance(optim.optim, torch.optim.Adam)
    assert optim.optim.param_groups[0]["betas"] == (0.5, 0.6)
    assert optim.optim.param_groups[0]["lr"] == 0.01
    assert (optim.rho, optim.adaptive, optim.probe_every) == (0.3, True, 0)
    assert math.isclose(SAMFactory().rho, 0.05)
