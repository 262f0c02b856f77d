"""save -> d3rlpy.load_learnable -> install -> resume continues the very same SAM run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import d3rlpy
import pytest
import torch
from conftest import build, facts_of, optimizers, sample_batch, state_differences, train

import samrl
from samrl.sam import SAMFactory, SAMOptimizerWrapper, install, is_installed

samrl.register()  # d3rlpy.load_learnable of samrl models below

CASES = {
    "cql-sam": ("cql", SAMFactory(rho=0.05)),
    "td3_plus_bc-asam": ("td3_plus_bc", SAMFactory(rho=0.05, adaptive=True)),
    "dqn-probe": ("dqn", SAMFactory(rho=0.05, probe_every=3)),
}


def _saved_and_loaded(tmp_path: Path, case: str) -> tuple[Any, Any, Any, str]:
    name, factory = CASES[case]
    algo, dataset = build(name, lambda net: factory)
    train(algo, dataset, name, 5)
    path = str(tmp_path / "model.d3")
    algo.save(path)
    loaded = d3rlpy.load_learnable(path, device="cpu")
    loaded.set_grad_step(algo.grad_step)  # d3rlpy does not save it; TD3's actor interval uses it
    return algo, loaded, dataset, path


@pytest.mark.parametrize("case", sorted(CASES))
def test_loaded_algorithm_resumes_bitwise(tmp_path: Path, case: str) -> None:
    name, factory = CASES[case]
    algo, loaded, dataset, _ = _saved_and_loaded(tmp_path, case)

    for field, original in optimizers(algo).items():
        restored = optimizers(loaded)[field]
        assert type(restored) is type(original)
        if isinstance(original, SAMOptimizerWrapper):
            assert isinstance(restored, SAMOptimizerWrapper)
            assert (restored.rho, restored.adaptive, restored.probe_every) == (
                factory.rho,
                factory.adaptive,
                factory.probe_every,
            )
    # Adam's moments came back (and everything else: weights, targets, step counts)
    sam_field = next(f for f, o in optimizers(algo).items() if isinstance(o, SAMOptimizerWrapper))
    state = optimizers(loaded)[sam_field].optim.state
    assert state and all(float(s["exp_avg"].abs().sum()) > 0.0 for s in state.values())
    assert state_differences(algo, loaded) == []

    assert not is_installed(loaded)
    install(loaded)
    resumed_original = train(algo, dataset, name, 6, seed=7)
    resumed_loaded = train(loaded, dataset, name, 6, seed=7)
    assert resumed_loaded == resumed_original  # losses and SAM metrics, probe schedule included
    assert any(k.endswith("_sharpness") for m in resumed_loaded for k in m)
    assert state_differences(algo, loaded) == []


def test_resume_without_the_optimizer_state_diverges(tmp_path: Path) -> None:
    """Control for the test above: lost Adam moments are visible in the resumed trajectory."""
    algo, loaded, dataset, _ = _saved_and_loaded(tmp_path, "cql-sam")
    loaded.impl.modules.reset_optimizer_states()
    install(loaded)
    train(algo, dataset, "cql", 3, seed=7)
    train(loaded, dataset, "cql", 3, seed=7)
    assert state_differences(algo, loaded) != []


def test_loaded_but_not_installed_sam_algorithm_refuses_to_update(tmp_path: Path) -> None:
    _, loaded, dataset, _ = _saved_and_loaded(tmp_path, "cql-sam")
    before = [p.detach().clone() for p in loaded.impl.modules.q_funcs.parameters()]
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match=r"samrl\.sam\.install"):
        loaded.update(sample_batch(dataset, facts_of("cql")))
    after = list(loaded.impl.modules.q_funcs.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True)), "stepped anyway"
