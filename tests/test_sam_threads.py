"""The engine's process-wide pieces are safe with threads.

- backward_disabled() switches Tensor.backward off for the calling thread only: another thread's
  backward keeps writing gradients, and threads leaving the switch out of order leave backward
  working everywhere.
- The engine replays torch's global RNG, so one algorithm trains per process at a time: a SAM
  update in one thread while another thread holds the RNG raises instead of mixing draws.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import build, facts_of, sample_batch

from samrl.sam import SAMFactory
from samrl.sam.tape import backward_disabled, global_rng_exclusive


def _grad_of_square(x0: float) -> torch.Tensor | None:
    x = torch.tensor(x0, requires_grad=True)
    (x * x).backward()
    return x.grad


def _in_thread(target: Callable[[], Any]) -> Any:
    """Run target in a new thread; return its result or re-raise its exception here."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = target()
        except BaseException as exc:  # handed back to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def test_backward_disabled_in_one_thread_leaves_other_threads_backward_working() -> None:
    inside = threading.Event()
    release = threading.Event()
    seen: dict[str, Any] = {}

    def holder() -> None:
        with backward_disabled():
            seen["holder_grad"] = _grad_of_square(3.0)  # switched off here: no gradient
            inside.set()
            release.wait(timeout=60)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert inside.wait(timeout=60)
        # the other thread is inside the switch right now; this thread's backward still works
        grad = _grad_of_square(2.0)
        assert grad is not None and grad.item() == 4.0
        # and so does a third thread's
        other = _in_thread(lambda: _grad_of_square(5.0))
        assert other is not None and other.item() == 10.0
    finally:
        release.set()
        thread.join(timeout=60)
    assert seen["holder_grad"] is None


def test_threads_leaving_the_switch_out_of_order_leave_backward_on() -> None:
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a() -> None:
        with backward_disabled():
            a_in.set()
            assert b_in.wait(timeout=60)
        a_out.set()  # A leaves first, while B is still inside

    def b() -> None:
        assert a_in.wait(timeout=60)
        with backward_disabled():
            b_in.set()
            assert a_out.wait(timeout=60)
            assert _grad_of_square(1.0) is None  # still off for B after A left

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    grad = _grad_of_square(2.0)
    assert grad is not None and grad.item() == 4.0
    assert _in_thread(lambda: _grad_of_square(3.0)).item() == 6.0


def test_nested_switch_in_one_thread_restores_the_outer_state() -> None:
    with backward_disabled():
        with backward_disabled():
            pass
        assert _grad_of_square(1.0) is None
    assert _grad_of_square(1.0).item() == 2.0


def test_second_thread_sam_update_while_rng_is_held_raises() -> None:
    name = "td3_plus_bc"
    algo, dataset = build(name, lambda net: SAMFactory(rho=0.05))
    batch = sample_batch(dataset, facts_of(name))
    with global_rng_exclusive(), pytest.raises(RuntimeError, match="one algorithm may train"):
        _in_thread(lambda: algo.update(batch))
    # once released, the other thread trains normally
    metrics = _in_thread(lambda: algo.update(batch))
    assert "critic_sharpness" in metrics
