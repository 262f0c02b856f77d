"""train.threads: validation, what `auto` means, and the thread count put back after a run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import run_cli, tiny_config, write_config

from samrl.threads import available_cores, resolve_threads, threads_for_run


def test_auto_is_one_thread_unless_a_launcher_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert resolve_threads("auto") == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve_threads("auto") == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not-a-number")
    assert resolve_threads("auto") == 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(10**6))
    assert resolve_threads("auto") == available_cores()  # capped to this process's cores
    assert resolve_threads(10**6) == available_cores()
    assert resolve_threads(1) == 1


def test_threads_for_run_restores_the_previous_count() -> None:
    torch.set_num_threads(1)
    with threads_for_run(available_cores()) as n:
        assert torch.get_num_threads() == n == available_cores()
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("value", ["many", 0, True, 1.5])
def test_bad_threads_is_one_line_exit_2(
    value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tmp_path, train={"n_steps": 10, "n_steps_per_epoch": 10, "threads": value})
    code, _, err = run_cli(["train", "--config", str(write_config(tmp_path, config))], capsys)
    assert code == 2
    assert "train.threads" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_threads_do_not_change_the_config_hash(tmp_path: Path) -> None:
    from samrl.config import load_config

    hashes = set()
    for threads in ("auto", 1, 2):
        config = tiny_config(tmp_path, train={"threads": threads})
        hashes.add(load_config(write_config(tmp_path, config, f"{threads}.yaml")).result_hash())
    assert len(hashes) == 1
