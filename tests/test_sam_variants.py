"""The SAM family (periodic_sam, looksam, gsam, msam, rho schedules, weight decay modes).

Exactness: each variant's degenerate setting is bitwise plain SAM, and rho = 0 is bitwise the
base optimizer, on real d3rlpy algorithms. Hand computations on a toy model (and on DQN for
m-sharpness) check the update each variant adds. Bad parameters are ConfigErrors naming the key.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any

import d3rlpy
import pytest
import torch
from conftest import (
    Toy,
    auto_adapts,
    build,
    own_metrics,
    sam_metrics,
    state_differences,
    train,
    trained_with_threads,
    two_threads_change_training,
)
from d3rlpy.optimizers import CosineAnnealingLRFactory, SGDFactory

import samrl
from samrl.algos import algo_facts
from samrl.config import resolve
from samrl.config.build import algo_config
from samrl.errors import ConfigError
from samrl.metrics import SAM_METRICS
from samrl.run.threads import available_cores
from samrl.sam import SAMFactory, SAMOptimizerWrapper, install
from samrl.sam.chunks import split_call
from samrl.sam.engine import sam_optimizers
from samrl.sam.names import OPTIMIZER_NAMES
from samrl.sam.perturbation import dot
from samrl.sam.schedules import RhoSchedule
from samrl.sam.tape import RecordedCall, RngState

samrl.register()  # d3rlpy.load_learnable of samrl models below

ALGOS = ["cql", "iql", "td3_plus_bc", "bc", "dqn", "sac"]
N_UPDATES = 20
RHO = 0.05


@functools.cache
def _trained(name: str, case: str) -> tuple[Any, list[dict[str, float]]]:
    """A tiny algorithm trained N_UPDATES steps; cached, read-only (shared by comparisons)."""
    factory = None if case == "base" else SAMFactory(**_CASES[case])  # type: ignore[arg-type]
    algo, dataset = build(name, lambda net: factory)
    return algo, train(algo, dataset, name, N_UPDATES)


_CASES: dict[str, dict[str, Any]] = {
    "sam": {"rho": RHO},
    # each equals plain SAM bitwise
    "periodic_k1": {"rho": RHO, "variant": "periodic_sam", "k": 1},
    "looksam_k1": {"rho": RHO, "variant": "looksam", "k": 1, "alpha": 0.7},
    "gsam_alpha0": {"rho": RHO, "variant": "gsam", "alpha": 0.0},
    "msam_full_batch": {"rho": RHO, "variant": "msam", "m": 16},
    # ASAM as a variant and as the adaptive ball of plain SAM (how models saved it before)
    "asam": {"rho": RHO, "variant": "asam"},
    "adaptive_sam": {"rho": RHO, "adaptive": True},
    # each equals the base optimizer bitwise
    "sam_rho0": {"rho": 0.0},
    "asam_rho0": {"rho": 0.0, "variant": "asam"},
    "periodic_rho0": {"rho": 0.0, "variant": "periodic_sam", "k": 3},
    "looksam_rho0": {"rho": 0.0, "variant": "looksam", "k": 3, "alpha": 0.7},
    "gsam_rho0": {"rho": 0.0, "variant": "gsam", "alpha": 0.3},
    "msam_rho0": {"rho": 0.0, "variant": "msam", "m": 4},
    "warmup_rho0": {"rho": 0.0, "rho_schedule": "linear_warmup", "warmup_steps": 5},
    "lr_proportional_rho0": {"rho": 0.0, "rho_schedule": "lr_proportional"},
    "loss_decay_rho0": {"rho": 0.0, "weight_decay_mode": "loss"},
}
SAME_AS_SAM = ["periodic_k1", "looksam_k1", "gsam_alpha0", "msam_full_batch"]
SAME_AS_BASE = [c for c in _CASES if c.endswith("rho0")]


@pytest.mark.parametrize("case", SAME_AS_SAM)
@pytest.mark.parametrize("name", ALGOS)
def test_degenerate_variant_is_bitwise_sam(name: str, case: str) -> None:
    sam, sam_metrics_ = _trained(name, "sam")
    variant, variant_metrics = _trained(name, case)
    assert state_differences(sam, variant) == []
    assert variant_metrics == sam_metrics_  # losses and sharpness metrics alike


@pytest.mark.parametrize("name", ALGOS)
def test_asam_variant_is_bitwise_sams_adaptive_ball(name: str) -> None:
    asam, asam_metrics = _trained(name, "asam")
    adaptive, adaptive_metrics = _trained(name, "adaptive_sam")
    assert state_differences(asam, adaptive) == []
    assert asam_metrics == adaptive_metrics
    assert state_differences(asam, _trained(name, "sam")[0]) != []  # the ball matters


@pytest.mark.parametrize("case", SAME_AS_BASE)
@pytest.mark.parametrize("name", ALGOS)
def test_variant_at_rho_zero_is_bitwise_the_base_optimizer(name: str, case: str) -> None:
    base, base_metrics = _trained(name, "base")
    variant, variant_metrics = _trained(name, case)
    assert state_differences(base, variant) == []
    assert [own_metrics(m) for m in variant_metrics] == base_metrics
    sharpness = [v for m in variant_metrics for k, v in m.items() if k.endswith("_sharpness")]
    assert sharpness and all(v == 0.0 for v in sharpness)


@pytest.mark.parametrize(
    "case",
    [
        {"variant": "periodic_sam", "k": 3},
        {"variant": "looksam", "k": 3},
        {"variant": "gsam"},
        {"variant": "msam", "m": 4},
        {"rho_schedule": "linear_warmup", "warmup_steps": 4},
    ],
    ids=["periodic", "looksam", "gsam", "msam", "warmup"],
)
@pytest.mark.parametrize("name", ALGOS)
def test_variant_changes_the_sam_trajectory_and_reports_finite_sharpness(
    name: str, case: dict[str, Any]
) -> None:
    sam, _ = _trained(name, "sam")
    algo, dataset = build(name, lambda net: SAMFactory(rho=RHO, **case))
    runs = train(algo, dataset, name, N_UPDATES)
    assert state_differences(sam, algo) != []
    reported = [sam_metrics(m) for m in runs]
    assert any(reported)
    assert all(math.isfinite(v) for m in reported for v in m.values())


def test_periodic_variants_measure_sharpness_every_kth_step() -> None:
    for variant in ("periodic_sam", "looksam"):
        algo, dataset = build("dqn", lambda net, v=variant: SAMFactory(rho=RHO, variant=v, k=3))
        runs = train(algo, dataset, "dqn", 9)
        assert [bool(sam_metrics(m)) for m in runs] == [i % 3 == 0 for i in range(9)]


# ---------------------------------------------------------------------------------------------
# Hand computations on a toy model: SGD through d3rlpy's factory, the real wrapper, tape, pass 2.

LR = 0.1


def factory_toy(factory: SAMFactory, base: Any = None) -> Toy:
    """The toy model with `factory` around `base` (SGD by default)."""
    factory = dataclasses.replace(factory, base=base or SGDFactory())
    return Toy(lambda model: factory.create([("model", model)], lr=LR, compiled=False))


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum((x.double() * y.double()).sum() for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _norm(a: list[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(_dot(a, a))


def _axpy(alpha: float | torch.Tensor, x: list[torch.Tensor], y: list[torch.Tensor]) -> list:
    """alpha x + y, in double precision."""
    return [alpha * a.double() + b.double() for a, b in zip(x, y, strict=True)]


def _sam_grad(toy: Toy, w: list[torch.Tensor], rho: float) -> tuple[list, list]:
    """(g(w), g(w + rho g/||g||)) by hand."""
    g = toy.grad_at(w)
    eps = [rho * t.double() / _norm(g) for t in g]
    w_eps = [(a.double() + e).float() for a, e in zip(w, eps, strict=True)]
    return g, toy.grad_at(w_eps)


def _assert_close(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a.double(), e.double(), rtol=1e-5, atol=1e-6)


def test_gsam_step_matches_the_hand_computation() -> None:
    rho, alpha = 0.2, 0.3
    toy = factory_toy(SAMFactory(rho=rho, variant="gsam", alpha=alpha))
    w0 = toy.weights()
    toy.update()

    g, g_s = _sam_grad(toy, w0, rho)
    # the part of g orthogonal to g_s; GSAM steps with g_s - alpha g_perp (official sign)
    g_perp = _axpy(-_dot(g, g_s) / _dot(g_s, g_s), g_s, g)
    assert abs(float(_dot(g_perp, g_s))) < 1e-9
    update = _axpy(-alpha, g_perp, g_s)
    # the correction leaves the component along g_s (the SAM loss's slope) unchanged
    assert float(_dot(update, g_s)) == pytest.approx(float(_dot(g_s, g_s)), rel=1e-9)
    _assert_close(toy.weights(), _axpy(-LR, update, w0))


def test_looksam_reuses_the_stored_direction_between_sam_steps() -> None:
    rho, alpha = 0.2, 0.5
    toy = factory_toy(SAMFactory(rho=rho, variant="looksam", k=2, alpha=alpha))
    w0 = toy.weights()
    first = toy.update()  # SAM step: stores g_v
    g, g_s = _sam_grad(toy, w0, rho)
    g_v = _axpy(-_dot(g, g_s) / _dot(g, g), g, g_s)
    w1 = _axpy(-LR, g_s, w0)
    _assert_close(toy.weights(), w1)
    assert set(first) == {f"toy_{m.suffix}" for m in SAM_METRICS}

    second = toy.update()  # in between: g + alpha ||g||/||g_v|| g_v, no second pass
    g1 = toy.grad_at([t.float() for t in w1])
    update = _axpy(alpha * _norm(g1) / _norm(g_v), g_v, g1)
    w2 = _axpy(-LR, update, w1)
    _assert_close(toy.weights(), w2)
    assert second == {}

    toy.update()  # SAM again, with a fresh g_v
    w2f = [t.float() for t in w2]
    _, g_s2 = _sam_grad(toy, w2f, rho)
    _assert_close(toy.weights(), _axpy(-LR, g_s2, w2))


def test_periodic_sam_steps_plainly_between_sam_steps() -> None:
    rho = 0.2
    toy = factory_toy(SAMFactory(rho=rho, variant="periodic_sam", k=2))
    w0 = toy.weights()
    toy.update()
    _, g_s = _sam_grad(toy, w0, rho)
    w1 = [t.float() for t in _axpy(-LR, g_s, w0)]
    _assert_close(toy.weights(), w1)
    toy.update()
    _assert_close(toy.weights(), _axpy(-LR, toy.grad_at(w1), w1))


@pytest.mark.parametrize("mode", ["decoupled", "loss"])
def test_weight_decay_modes_match_the_hand_computation(mode: str) -> None:
    rho, wd = 0.2, 0.1
    toy = factory_toy(SAMFactory(rho=rho, weight_decay_mode=mode), base=SGDFactory(weight_decay=wd))
    w0 = toy.weights()
    toy.update()
    g = toy.grad_at(w0)
    if mode == "decoupled":  # eps from the loss alone; SGD adds wd w at its step
        _, g_s = _sam_grad(toy, w0, rho)
        update = _axpy(wd, w0, g_s)
    else:  # L2 in the loss: in eps, and wd (w + eps) in the SAM gradient; SGD's decay off
        g_l2 = _axpy(wd, w0, g)
        w_eps = _axpy(rho / _norm(g_l2), g_l2, w0)
        update = _axpy(wd, w_eps, toy.grad_at([t.float() for t in w_eps]))
    _assert_close(toy.weights(), _axpy(-LR, update, w0))
    assert toy.optim.optim.param_groups[0]["weight_decay"] == wd  # restored after the step


def test_rho_schedule_values() -> None:
    warmup = RhoSchedule("linear_warmup", rho=0.1, warmup_steps=4)
    assert [warmup.value(t) for t in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    floor = RhoSchedule("linear_warmup", rho=0.1, warmup_steps=2, rho_min=0.02)
    assert [floor.value(t) for t in range(3)] == pytest.approx([0.06, 0.1, 0.1])
    proportional = RhoSchedule("lr_proportional", rho=0.1, rho_min=0.02)
    assert proportional.value(7, lr=1e-3, lr_max=1e-3, lr_min=0.0) == pytest.approx(0.1)
    assert proportional.value(7, lr=0.5e-3, lr_max=1e-3, lr_min=0.0) == pytest.approx(0.06)
    assert proportional.value(7, lr=0.0, lr_max=1e-3, lr_min=0.0) == pytest.approx(0.02)
    assert proportional.value(7, lr=3e-4, lr_max=3e-4, lr_min=3e-4) == 0.1  # constant lr
    assert RhoSchedule("constant", rho=0.05).value(123) == 0.05


def test_lr_proportional_rho_follows_the_base_schedulers_lr() -> None:
    base = SGDFactory(lr_scheduler_factory=CosineAnnealingLRFactory(T_max=6, eta_min=0.01))
    toy = factory_toy(SAMFactory(rho=0.2, rho_schedule="lr_proportional", rho_min=0.05), base=base)
    for step in range(6):
        lr = toy.optim.optim.param_groups[0]["lr"]
        expected = 0.05 + (0.2 - 0.05) * (lr - 0.01) / (LR - 0.01)
        assert toy.optim.rho_at(step) == pytest.approx(expected)
        toy.update()
    assert toy.optim.rho_at(6) == pytest.approx(0.05)  # lr at eta_min: rho at rho_min


def test_linear_warmup_first_step_uses_the_scheduled_radius() -> None:
    toy = factory_toy(SAMFactory(rho=0.2, rho_schedule="linear_warmup", warmup_steps=4))
    w0 = toy.weights()
    metrics = toy.update()
    _, g_s = _sam_grad(toy, w0, 0.05)
    _assert_close(toy.weights(), _axpy(-LR, g_s, w0))
    assert metrics["toy_grad_norm"] == pytest.approx(float(_norm(toy.grad_at(w0))), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# m-sharpness on DQN: the averaged chunk gradient against per-chunk SAM gradients by hand.


def _rows(batch: Any, start: int, stop: int) -> Any:
    fields = ("observations", "actions", "rewards", "next_observations", "terminals", "intervals")
    return dataclasses.replace(
        batch, **{f: getattr(batch, f)[start:stop] for f in fields}, numpy_batch=None
    )


def test_msam_gradient_is_the_mean_of_per_chunk_sam_gradients() -> None:
    rho, m = 0.1, 4
    algo, dataset = build("dqn", lambda net: SAMFactory(rho=rho, variant="msam", m=m))
    hand, _ = build("dqn", installed=False)  # same seed: same weights, untouched by SAM
    optim = sam_optimizers(algo)["q"]
    captured: list[list[torch.Tensor]] = []
    optim.optim.register_step_pre_hook(
        lambda *_: captured.append([p.grad.detach().clone() for p in optim._params])
    )
    torch.manual_seed(3)
    metrics = algo.update(dataset.sample_transition_batch(16))
    batch = algo.impl._samrl_tape.last.args[0]

    params = list(hand.impl.modules.q_funcs.parameters())
    w = [p.detach().clone() for p in params]
    total = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    sharpness = []
    for start in range(0, 16, m):
        chunk = _rows(batch, start, start + m)
        loss = hand.impl.compute_grad(chunk).loss.detach()
        g = [p.grad.detach().clone() for p in params]
        with torch.no_grad():
            for p, t in zip(params, g, strict=True):
                p.add_(rho * t / _norm(g).float())
        loss_perturbed = hand.impl.compute_grad(chunk).loss.detach()
        sharpness.append(float(loss_perturbed - loss))
        total = _axpy(1.0, [p.grad for p in params], total)
        with torch.no_grad():
            for p, t in zip(params, w, strict=True):
                p.copy_(t)
    _assert_close(captured[0], [t / (16 // m) for t in total])
    assert metrics["q_sharpness"] == pytest.approx(sum(sharpness) / len(sharpness), rel=1e-4)


@dataclasses.dataclass(frozen=True)
class _Batch:
    x: torch.Tensor
    pair: tuple[torch.Tensor, torch.Tensor]
    other: torch.Tensor
    numpy_batch: Any = "numpy"


def _noise(call: RecordedCall) -> torch.Tensor:
    call.rng_before.restore()
    return call.func(*call.args)


def test_msam_chunks_slice_rows_and_draw_independent_reproducible_noise() -> None:
    x = torch.arange(8.0)
    batch = _Batch(x, (x * 10, x + 1), torch.zeros(3))  # no batch dimension: `other` stays
    draw = lambda b, step: torch.rand(b.x.shape[0])  # noqa: E731
    call = RecordedCall(draw, (batch, 7), {}, RngState.capture())
    torch.rand(5)
    before = torch.get_rng_state()
    chunks = split_call(call, 2)
    assert torch.equal(torch.get_rng_state(), before)  # the training stream is untouched
    assert [c.args[0].x.tolist() for c in chunks] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [c.args[0].pair[0].tolist() for c in chunks][1] == [20, 30]
    assert [c.args[0].pair[1].tolist() for c in chunks][3] == [7, 8]
    assert all(c.args[0].other.shape == (3,) for c in chunks)
    assert all(c.args[1] == 7 and c.args[0].numpy_batch is None for c in chunks)
    noise = [_noise(c) for c in chunks]
    assert len({tuple(n.tolist()) for n in noise}) == 4  # not the same draws for every chunk
    again = [_noise(c) for c in split_call(call, 2)]
    assert all(torch.equal(a, b) for a, b in zip(noise, again, strict=True))
    assert split_call(call, 8) == [call]


def test_msam_chunks_every_algorithm_batch_type() -> None:
    """Transition and trajectory minibatches (DT) both split; sharpness is reported."""
    for name in ("decision_transformer", "cql", "discrete_bcq"):
        algo, dataset = build(name, lambda net: SAMFactory(rho=RHO, variant="msam", m=8))
        runs = train(algo, dataset, name, 3)
        assert all(math.isfinite(v) for m in runs for v in sam_metrics(m).values())
        assert any(k.endswith("_sharpness") for m in runs for k in m)


def test_msam_chunk_size_that_does_not_divide_the_batch_is_a_config_error() -> None:
    algo, dataset = build("bc", lambda net: SAMFactory(rho=RHO, variant="msam", m=5))
    with pytest.raises(ConfigError, match=r"optim\.m: must divide the minibatch size 16"):
        train(algo, dataset, "bc", 1)


# ---------------------------------------------------------------------------------------------
# Configs: names, keys, errors, serialization.


def _config(**optim: Any) -> dict[str, Any]:
    return {
        "algo": {"name": "bc", "params": {"batch_size": 16}},
        "dataset": {"name": "pendulum-random"},
        "optim": optim,
        "train": {"device": "cpu"},
    }


def _resolve(**optim: Any) -> Any:
    return resolve(_config(**optim), source="cfg.yaml", check_dataset=False)


def _check_optim(**optim: Any) -> Any:
    """The optim section as samrl.config's one resolver validates it."""
    return _resolve(**optim).optim


def test_every_name_key_is_a_sam_factory_field() -> None:
    fields = {f.name for f in dataclasses.fields(SAMFactory)}
    for spec in OPTIMIZER_NAMES.values():
        assert set(spec.keys) <= fields
        assert set(spec.fixed) <= fields


@pytest.mark.parametrize(
    "optim",
    [
        {"name": "periodic_sam", "k": 5},
        {"name": "looksam", "k": 5, "alpha": 0.7},
        {"name": "gsam", "alpha": 0.2, "rho_schedule": "lr_proportional", "rho_min": 0.01},
        {"name": "msam", "m": 4},
        {"name": "sam", "rho_schedule": "linear_warmup", "warmup_steps": 100},
        {"name": "asam", "rho": 1.0, "weight_decay_mode": "loss"},
    ],
)
def test_variant_configs_build_sam_factories(optim: dict[str, Any]) -> None:
    checked = _check_optim(**optim)
    built = algo_config(algo_facts("bc"), {"batch_size": 16}, checked)
    factory = built.optim_factory
    assert isinstance(factory, SAMFactory)
    for key, value in optim.items():
        if key != "name":
            assert getattr(factory, key) == value
    assert factory.variant == optim["name"]
    assert factory.adaptive == (optim["name"] == "asam")


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        ({"name": "periodic_sam", "k": 0}, "optim.k: must be >= 1, got 0"),
        ({"name": "looksam", "k": "5"}, "optim.k: must be an integer, got str '5'"),
        ({"name": "looksam", "alpha": 1.5}, "optim.alpha: must be in [0, 1], got 1.5"),
        ({"name": "gsam", "alpha": -0.1}, "optim.alpha: must be in [0, 1], got -0.1"),
        ({"name": "msam"}, "optim.m: msam needs the chunk size m"),
        ({"name": "msam", "m": 0}, "optim.m: msam needs the chunk size m"),
        (
            {"name": "sam", "rho_schedule": "cosine"},
            "optim.rho_schedule: unknown rho schedule 'cosine'",
        ),
        (
            {"name": "sam", "rho_schedule": "linear_warmup", "warmup_steps": -1},
            "optim.warmup_steps: must be >= 0, got -1",
        ),
        (
            {"name": "sam", "rho_schedule": "linear_warmup"},
            "optim.warmup_steps: rho_schedule linear_warmup needs >= 1",
        ),
        ({"name": "sam", "warmup_steps": 10}, "optim.warmup_steps: applies to rho_schedule"),
        (
            {"name": "gsam", "rho_schedule": "lr_proportional", "rho_min": 0.1},
            "optim.rho_min: must be in [0, rho = 0.05], got 0.1",
        ),
        (
            {"name": "sam", "weight_decay_mode": "l2"},
            "optim.weight_decay_mode: unknown weight decay mode 'l2'",
        ),
        ({"name": "gsam", "k": 5}, "optim.k: unknown key for optimizer 'gsam'"),
    ],
)
def test_bad_variant_parameters_are_config_errors_naming_the_key(
    optim: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _check_optim(**optim)
    assert str(info.value).startswith(f"cfg.yaml: {message}"), str(info.value)


def test_resolve_accepts_variant_keys_and_refuses_bad_ones() -> None:
    config = _resolve(name="looksam", k=5, alpha=0.5)
    assert config.optim.variant_params == {"k": 5, "alpha": 0.5}
    with pytest.raises(ConfigError, match=r"^cfg\.yaml: optim\.k: must be >= 1, got 0$"):
        _resolve(name="periodic_sam", k=0)


def test_chunk_size_not_dividing_the_configured_batch_is_refused_by_resolve() -> None:
    with pytest.raises(ConfigError, match=r"optim\.m: must divide"):
        _resolve(name="msam", m=5)


CHECKPOINT_CASES = {
    "cql-looksam": ("cql", SAMFactory(rho=RHO, variant="looksam", k=3, alpha=0.5)),
    "dqn-msam": ("dqn", SAMFactory(rho=RHO, variant="msam", m=4)),
    "td3_plus_bc-gsam-warmup": (
        "td3_plus_bc",
        SAMFactory(rho=RHO, variant="gsam", rho_schedule="linear_warmup", warmup_steps=50),
    ),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_variant_survives_save_load_and_resumes_bitwise(tmp_path: Path, case: str) -> None:
    name, factory = CHECKPOINT_CASES[case]
    algo, dataset = build(name, lambda net: factory)
    train(algo, dataset, name, 4)  # looksam k=3: a stored direction is in use at step 4
    path = str(tmp_path / "model.d3")
    algo.save(path)
    loaded = d3rlpy.load_learnable(path, device="cpu")
    loaded.set_grad_step(algo.grad_step)
    for optimizer in sam_optimizers(loaded).values():
        assert isinstance(optimizer, SAMOptimizerWrapper)
        assert type(optimizer.variant).name == factory.variant
        assert optimizer.variant.values == factory.variant_params()
    assert state_differences(algo, loaded) == []
    install(loaded)
    assert train(loaded, dataset, name, 5, seed=7) == train(algo, dataset, name, 5, seed=7)
    assert state_differences(algo, loaded) == []


# ---------------------------------------------------------------------------------------------
# train.threads auto switches torch's thread count between steps where its check finds 1 and 2
# threads bitwise alike; every variant must then compute the same bits with any count
# (tests/test_threads.py checks the networks and plain SAM).


@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores to run 2 threads")
def test_dot_has_the_same_bits_with_any_thread_count() -> None:
    """GSAM's and LookSAM's projections: samrl's dot gives the same bits with 1 and 2 threads,
    whether or not torch.dot of a 65536-element weight does on this CPU (on some it differs
    in the last bits: samrl's dot never leaves the split to torch)."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(256, 256)] * 6 + [(70001,), (4096,), (3,)]  # padded rows, one row, tiny
    a = [torch.randn(s, generator=gen) for s in shapes]
    b = [torch.randn(s, generator=gen) for s in shapes]
    results = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        results[threads] = [dot([x], [y]) for x, y in zip(a, b, strict=True)]
    assert all(torch.equal(x, y) for x, y in zip(results[1], results[2], strict=True))
    exact = [float((x.double() * y.double()).sum()) for x, y in zip(a, b, strict=True)]
    assert [float(v) for v in results[1]] == pytest.approx(exact, rel=1e-5, abs=1e-3)


@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores to run 2 threads")
@pytest.mark.parametrize(
    "case",
    [
        {"adaptive": True},
        {"variant": "looksam", "k": 2},
        {"variant": "gsam"},
        {"variant": "msam", "m": 64},
    ],
    ids=["asam", "looksam", "gsam", "msam"],
)
def test_switching_threads_changes_no_variants_bits(
    case: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """256-256 networks: a 65536-element weight, which torch splits between threads for any
    whole-tensor reduction (a dot product summed in another order differs in the last bits).
    Where 1 and 2 threads give the same bits on this CPU (measured), `auto` adapts and switching
    between them mid-run changes nothing; where they do not, `auto` finds it and keeps one
    count."""
    from d3rlpy.models.encoders import VectorEncoderFactory

    config = d3rlpy.algos.TD3PlusBCConfig(
        batch_size=256,
        critic_encoder_factory=VectorEncoderFactory([256, 256]),
        actor_encoder_factory=VectorEncoderFactory([8]),
        critic_optim_factory=SAMFactory(rho=RHO, **case),
    )
    trained = functools.partial(trained_with_threads, config)
    steps = 6
    fixed = trained([1] * steps)
    differs = two_threads_change_training(config, steps, fixed)
    assert auto_adapts(config, monkeypatch) is not differs
    if not differs:
        switched = trained([1 + i % 2 for i in range(steps)])
        assert state_differences(fixed, switched) == []
