"""Loss landscapes and sharpness measures on tiny problems."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from samrl.analysis.landscape import (
    filter_normalized_direction,
    loss_surface_1d,
    loss_surface_2d,
)
from samrl.analysis.worst_case import average_sharpness, m_sharpness, worst_case_sharpness


class Tiny:
    """A 3-5-2 tanh MLP with MSE on fixed data (float64)."""

    def __init__(self, seed: int = 100) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)
        ).double()
        with torch.no_grad():
            for p in self.model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        self.x = torch.randn(24, 3, generator=gen, dtype=torch.float64)
        self.y = torch.randn(24, 2, generator=gen, dtype=torch.float64)
        self.params = list(self.model.parameters())

    def loss_on(self, idx: slice) -> torch.Tensor:
        return ((self.model(self.x[idx]) - self.y[idx]) ** 2).mean()

    def loss_fn(self) -> torch.Tensor:
        return self.loss_on(slice(None))

    def grads(self) -> list[torch.Tensor]:
        return list(torch.autograd.grad(self.loss_fn(), self.params))

    def loss_at(self, eps: list[torch.Tensor]) -> float:
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, e in zip(self.params, eps, strict=True):
                p.add_(e)
            value = float(self.loss_fn())
            for p, s in zip(self.params, saved, strict=True):
                p.copy_(s)  # p + e - e need not be p bitwise
        return value


@pytest.fixture
def tiny() -> Tiny:
    return Tiny()


def _same(params: list[torch.nn.Parameter], saved: list[torch.Tensor]) -> bool:
    return all(torch.equal(p.detach(), s) for p, s in zip(params, saved, strict=True))


def _norm(ts: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in ts))


# ------------------------------------------------------------------------------------------
# Landscape


def test_filter_normalization(tiny: Tiny) -> None:
    d = filter_normalized_direction(tiny.params, seed=0)
    for di, p in zip(d, tiny.params, strict=True):
        assert di.shape == p.shape and di.dtype == p.dtype
        if p.dim() >= 2:
            torch.testing.assert_close(di.norm(dim=1), p.detach().norm(dim=1))
            assert not torch.allclose(di, p.detach())  # random, not the weight itself
        else:
            assert torch.count_nonzero(di) == 0
    copy = filter_normalized_direction(tiny.params, seed=0, one_d="copy")
    normed = filter_normalized_direction(tiny.params, seed=0, one_d="normalize")
    for c, n, p in zip(copy, normed, tiny.params, strict=True):
        if p.dim() == 1:
            assert torch.equal(c, p.detach())
            torch.testing.assert_close(n.norm(), p.detach().norm())
    again = filter_normalized_direction(tiny.params, seed=0)
    other = filter_normalized_direction(tiny.params, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(d, again, strict=True))
    assert not torch.equal(d[0], other[0])


def test_surface_1d(tiny: Tiny) -> None:
    saved = [p.detach().clone() for p in tiny.params]
    d = filter_normalized_direction(tiny.params, seed=0)
    alphas = np.linspace(-1.0, 1.0, 11)  # contains 0.0 exactly
    values = loss_surface_1d(tiny.loss_fn, tiny.params, d, alphas)
    assert values.shape == (11,)
    assert values[5] == float(tiny.loss_fn())  # exact
    assert _same(tiny.params, saved)
    expected = tiny.loss_at([0.4 * di for di in d])
    assert values[7] == pytest.approx(expected, rel=1e-12)
    # flat direction gives the same surface
    flat = torch.cat([di.reshape(-1) for di in d])
    assert np.array_equal(loss_surface_1d(tiny.loss_fn, tiny.params, flat, alphas), values)


def test_surface_2d(tiny: Tiny) -> None:
    saved = [p.detach().clone() for p in tiny.params]
    d1 = filter_normalized_direction(tiny.params, seed=0)
    d2 = filter_normalized_direction(tiny.params, seed=1)
    alphas, betas = [-0.5, 0.0, 0.5], [0.0, 0.25]
    surf = loss_surface_2d(tiny.loss_fn, tiny.params, d1, d2, alphas, betas)
    assert surf.shape == (3, 2)
    assert surf[1, 0] == float(tiny.loss_fn())
    assert _same(tiny.params, saved)
    expected = tiny.loss_at([0.5 * a + 0.25 * b for a, b in zip(d1, d2, strict=True)])
    assert surf[2, 1] == pytest.approx(expected, rel=1e-12)
    line = loss_surface_1d(tiny.loss_fn, tiny.params, d1, alphas)
    np.testing.assert_array_equal(surf[:, 0], line)


def test_surface_restores_params_after_error(tiny: Tiny) -> None:
    saved = [p.detach().clone() for p in tiny.params]
    calls = []

    def failing() -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return tiny.loss_fn()

    d = filter_normalized_direction(tiny.params, seed=0)
    with pytest.raises(RuntimeError, match="boom"):
        loss_surface_1d(failing, tiny.params, d, [0.3, 0.7, 1.1, 2.0])
    assert _same(tiny.params, saved)


# ------------------------------------------------------------------------------------------
# Worst-case sharpness


def test_one_step_is_sam(tiny: Tiny) -> None:
    rho = 0.05
    g = tiny.grads()
    gn = _norm(g)
    eps = [rho * gi / gn for gi in g]
    out = worst_case_sharpness(tiny.loss_fn, tiny.params, rho, steps=1)
    base = float(tiny.loss_fn())
    assert out["loss"] == base
    assert out["eps_norm"] == pytest.approx(rho, rel=1e-12)
    assert out["grad_norm"] == pytest.approx(gn, rel=1e-12)
    for a, b in zip(out["eps"], eps, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    assert out["loss_perturbed"] == pytest.approx(tiny.loss_at(eps), rel=1e-12)
    assert out["sharpness"] == pytest.approx(out["loss_perturbed"] - base, rel=1e-12)
    assert out["sharpness"] > 0


def test_one_step_is_asam(tiny: Tiny) -> None:
    rho = 0.1
    g = tiny.grads()
    t = [p.detach().abs() for p in tiny.params]
    tg_norm = _norm([ti * gi for ti, gi in zip(t, g, strict=True)])
    eps = [rho * ti**2 * gi / tg_norm for ti, gi in zip(t, g, strict=True)]
    out = worst_case_sharpness(tiny.loss_fn, tiny.params, rho, steps=1, adaptive=True)
    for a, b in zip(out["eps"], eps, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    assert out["eps_norm_adaptive"] == pytest.approx(rho, rel=1e-12)
    assert out["eps_norm"] == pytest.approx(_norm(eps), rel=1e-12)
    assert out["loss_perturbed"] == pytest.approx(tiny.loss_at(eps), rel=1e-12)


@pytest.mark.parametrize("adaptive", [False, True])
def test_more_steps_never_worse(tiny: Tiny, adaptive: bool) -> None:
    rho = 0.2
    one = worst_case_sharpness(tiny.loss_fn, tiny.params, rho, 1, adaptive=adaptive)
    prev = one["sharpness"]
    for k in (2, 5, 20):
        out = worst_case_sharpness(tiny.loss_fn, tiny.params, rho, k, adaptive=adaptive)
        assert out["sharpness"] >= prev
        assert len(out["losses"]) == k and out["losses"][0] == one["loss_perturbed"]
        key = "eps_norm_adaptive" if adaptive else "eps_norm"
        assert out[key] <= rho * (1 + 1e-12)
        prev = out["sharpness"]
    # a small step size on purpose: the best iterate is kept whatever the steps do
    big = worst_case_sharpness(tiny.loss_fn, tiny.params, rho, 10, step_size=5 * rho)
    assert big["sharpness"] >= one["sharpness"]


def test_multi_step_on_quadratic_bounded_and_improves() -> None:
    # L(w) = 0.5 w^T A w, A PSD: max over the ball is at most rho ||g|| + rho^2/2 lambda_max
    gen = torch.Generator().manual_seed(4)
    b = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    a = b @ b.T
    w = torch.nn.Parameter(torch.randn(6, generator=gen, dtype=torch.float64) * 0.1)

    def loss() -> torch.Tensor:
        return 0.5 * w @ a @ w

    rho = 1.0
    lam = float(torch.linalg.eigvalsh(a)[-1])
    gn = float((a @ w.detach()).norm())
    one = worst_case_sharpness(loss, [w], rho, 1)["sharpness"]
    many = worst_case_sharpness(loss, [w], rho, 30)["sharpness"]
    assert one < many <= rho * gn + 0.5 * rho**2 * lam + 1e-12
    assert many >= 0.5 * rho**2 * lam - rho * gn  # at least the top eigenvector's value


def test_zero_rho_and_zero_gradient() -> None:
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    out = worst_case_sharpness(lambda: (w**2).sum(), [w], 0.1, 3)  # minimum: g = 0
    assert out["sharpness"] == 0.0 and out["eps_norm"] == 0.0
    tiny = Tiny()
    assert worst_case_sharpness(tiny.loss_fn, tiny.params, 0.0, 2)["sharpness"] == 0.0


# ------------------------------------------------------------------------------------------
# Average and m-sharpness


def test_average_sharpness_quadratic() -> None:
    # E[L(w + e)] - L(w) = sigma^2 / 2 tr(A) for L = 0.5 w^T A w
    gen = torch.Generator().manual_seed(5)
    b = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    a = b @ b.T
    w = torch.nn.Parameter(torch.randn(5, generator=gen, dtype=torch.float64))
    sigma = 0.1
    out = average_sharpness(lambda: 0.5 * w @ a @ w, [w], sigma, n_samples=400, seed=0)
    expected = 0.5 * sigma**2 * float(torch.trace(a))
    assert abs(out["sharpness"] - expected) < 3 * out["standard_error"]
    assert out["loss_perturbed"] - out["loss"] == pytest.approx(out["sharpness"])


def test_m_sharpness(tiny: Tiny) -> None:
    chunks = [slice(0, 8), slice(8, 16), slice(16, 24)]

    def make(c: int):
        return lambda: tiny.loss_on(chunks[c])

    out = m_sharpness(make, 3, tiny.params, 0.05, steps=2)
    each = [worst_case_sharpness(make(c), tiny.params, 0.05, 2)["sharpness"] for c in range(3)]
    assert out["per_chunk"] == each
    assert out["sharpness"] == pytest.approx(float(np.mean(each)))
    whole = worst_case_sharpness(tiny.loss_fn, tiny.params, 0.05)["sharpness"]
    single = m_sharpness(lambda c: tiny.loss_fn, 1, tiny.params, 0.05)
    assert single["sharpness"] == whole and math.isnan(single["standard_error"])


# ------------------------------------------------------------------------------------------
# Global RNG and parameters


def test_rng_and_params_untouched(tiny: Tiny) -> None:
    torch.manual_seed(7)
    state = torch.get_rng_state()
    saved = [p.detach().clone() for p in tiny.params]

    def noisy() -> torch.Tensor:
        noise = 0.01 * torch.randn(tiny.y.shape, dtype=torch.float64)
        return ((tiny.model(tiny.x) - tiny.y - noise) ** 2).mean()

    d1 = filter_normalized_direction(tiny.params, seed=0)
    d2 = filter_normalized_direction(tiny.params, seed=1)
    calls = [
        lambda: loss_surface_1d(noisy, tiny.params, d1, [-1.0, 0.0, 1.0]),
        lambda: loss_surface_2d(noisy, tiny.params, d1, d2, [0.0, 1.0], [0.0, 1.0]),
        lambda: worst_case_sharpness(noisy, tiny.params, 0.1, 3),
        lambda: worst_case_sharpness(noisy, tiny.params, 0.1, 3, adaptive=True),
        lambda: average_sharpness(noisy, tiny.params, 0.01, 5),
        lambda: m_sharpness(lambda c: noisy, 2, tiny.params, 0.1, 2),
    ]
    for call in calls:
        call()
        assert torch.equal(torch.get_rng_state(), state)
        assert _same(tiny.params, saved)
        assert all(p.grad is None for p in tiny.params)
    # the same draws at every evaluation: with rho = 0 the noisy loss has zero sharpness
    assert worst_case_sharpness(noisy, tiny.params, 0.0, 3)["sharpness"] == 0.0
    assert loss_surface_1d(noisy, tiny.params, d1, [0.0, 0.0]).tolist() == [float(noisy())] * 2


def test_works_inside_no_grad(tiny: Tiny) -> None:
    from samrl.analysis.curvature import hutchinson_trace, top_eigenvalues

    expected = worst_case_sharpness(tiny.loss_fn, tiny.params, 0.1, 2)
    lam = top_eigenvalues(tiny.loss_fn, tiny.params)[0]
    with torch.no_grad():
        assert (
            worst_case_sharpness(tiny.loss_fn, tiny.params, 0.1, 2)["sharpness"]
            == (expected["sharpness"])
        )
        assert torch.equal(top_eigenvalues(tiny.loss_fn, tiny.params)[0], lam)
        hutchinson_trace(tiny.loss_fn, tiny.params, 3)
