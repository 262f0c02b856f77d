"""Pass 2's reuse of network outputs (samrl/sam/reuse.py) changes nothing but the time.

For every algorithm, SAM (rho 0.05) with reuse and without gives bitwise the same parameters,
optimizer states and metrics (sharpness, L(w+eps), grad norms) after many updates; reuse really
happens where it should (CQL's policy and target networks in the critic's pass 2) and not where
it must not (IQL's value function, which the critic optimizer perturbs).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import build, state_differences, train

from samrl.algos import algorithm_table
from samrl.sam import SAMFactory
from samrl.sam.engine import _TAPE_ATTR
from samrl.sam.tape import Tape

ALGORITHMS = sorted(algorithm_table())
N_UPDATES = 12


def _tape(algo: Any) -> Tape:
    return getattr(algo.impl, _TAPE_ATTR)


def _replays(tape: Tape) -> list[Any]:
    """Every pass 2's Replay (saved calls, how many were reused) from now on."""
    replays: list[Any] = []
    assign = type(tape).__setattr__

    def setattr_hook(self: Tape, name: str, value: Any) -> None:
        if name == "reuse_replay" and value is not None:
            replays.append(value)
        assign(self, name, value)

    tape.__class__ = type("ObservedTape", (Tape,), {"__setattr__": setattr_hook})
    return replays


@pytest.mark.parametrize("name", ALGORITHMS)
def test_reuse_is_bitwise_the_full_second_pass(name: str) -> None:
    with_reuse, dataset = build(name, lambda net: SAMFactory(rho=0.05))
    without, _ = build(name, lambda net: SAMFactory(rho=0.05))
    _tape(without).reuse_outputs = False
    a = train(with_reuse, dataset, name, N_UPDATES)
    b = train(without, dataset, name, N_UPDATES)
    assert state_differences(with_reuse, without) == []
    assert a == b


def test_cql_reuses_policy_and_target_calls_in_the_critic_pass() -> None:
    algo, dataset = build("cql", lambda net: SAMFactory(rho=0.05) if net == "critic" else None)
    replays = _replays(_tape(algo))
    train(algo, dataset, "cql", 3)
    # per critic pass 2: the target action (policy), two target Q functions, and the policy
    # samples for observations and next observations
    assert [r.reused for r in replays] == [5, 5, 5]


def test_iql_value_function_is_never_reused_in_the_critic_pass() -> None:
    algo, dataset = build("iql", lambda net: SAMFactory(rho=0.05) if net == "critic" else None)
    replays = _replays(_tape(algo))
    train(algo, dataset, "iql", 3)
    value_func = algo.impl.modules.value_func
    assert len(replays) == 3
    for replay in replays:
        saved = [c for c in replay.saved if c.module is value_func]
        assert saved and all(c.output is None for c in saved)
        # only the two target Q functions (no grad, critic-owned value function excluded)
        assert replay.reused == 2
