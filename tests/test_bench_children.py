"""The benchmarks' child-process timing (benchmarks/_common.py): a child that outlives its cap
is killed and reported as censored (infinite), one that finishes is timed, one that fails stops
the benchmark with its stderr."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import run_child


def test_a_child_over_its_cap_is_killed_and_censored() -> None:
    start = time.perf_counter()
    _, wall = run_child([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert math.isinf(wall)
    assert time.perf_counter() - start < 30  # killed, not waited for


def test_a_child_under_its_cap_is_timed() -> None:
    _, wall = run_child([sys.executable, "-c", "import time; time.sleep(0.2)"], timeout=30)
    assert 0.2 <= wall < 30


def test_a_failing_child_stops_the_benchmark_with_its_stderr() -> None:
    with pytest.raises(SystemExit, match="boom"):
        run_child([sys.executable, "-c", "import sys; sys.exit('boom')"], timeout=30)
