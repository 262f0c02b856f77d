"""Which bytes a run trained on: config.yaml records the dataset file's sha256 (equal to what
coreutils' sha256sum prints) and size, `dataset.sha256` pins the file, and each file is hashed
once (the hash is kept beside it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli, tiny_config, write_config

import samrl.data.provenance as provenance
from samrl.config import load_config
from samrl.data.builtin import BUILTINS, ensure_builtin


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    """A D4RL-layout file of its own (the built-in pendulum-random data, copied)."""
    source = ensure_builtin(BUILTINS["pendulum-random"], size=1000, seed=0)
    path = tmp_path / "data" / "pendulum.hdf5"
    path.parent.mkdir()
    shutil.copyfile(source, path)
    return path


def config_on(
    tmp_path: Path, path: Path, out: str, file_name: str | None = None, **dataset: Any
) -> Path:
    config = tiny_config(
        tmp_path,
        algo={"name": "bc", "params": {"batch_size": 16}},
        dataset={"name": f"file:{path}", **dataset},
        train={"n_steps": 4, "n_steps_per_epoch": 2, "eval_episodes": 0},
        output={"dir": str(tmp_path / out)},
    )
    return write_config(tmp_path, config, file_name or f"{out}.yaml")


def written_config(root: Path) -> dict[str, Any]:
    return yaml.safe_load(next(root.glob("*/*/config.yaml")).read_text())


def sha256sum(path: Path) -> str:
    binary = shutil.which("sha256sum")
    if binary is None:
        pytest.skip("coreutils' sha256sum is not installed here")
    done = subprocess.run([binary, str(path)], capture_output=True, text=True, check=True)
    return done.stdout.split()[0]


def test_run_records_the_files_sha256_once_per_file(
    tmp_path: Path, data_file: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = provenance.file_sha256
    monkeypatch.setattr(provenance, "file_sha256", lambda p: calls.append(p) or real(p))
    for out in ("first", "second"):
        code, _, err = run_cli(
            ["train", "--config", str(config_on(tmp_path, data_file, out)), "--quiet"], capsys
        )
        assert code == 0, err
    assert calls == [data_file]  # the second run read the hash kept beside the file
    for out in ("first", "second"):
        record = written_config(tmp_path / out)["samrl"]["dataset_file"]
        assert record == {
            "spec": f"file:{data_file}",
            "path": str(data_file),
            "size": data_file.stat().st_size,
            "sha256": sha256sum(data_file),
        }
    code, out, err = run_cli(["data", "info", f"file:{data_file}"], capsys)
    assert code == 0, err
    assert f"sha256:      {sha256sum(data_file)}" in out
    assert calls == [data_file]
    # a rewritten file (other mtime) is hashed again, and its new hash recorded
    data_file.write_bytes(data_file.read_bytes())
    assert provenance.fingerprint(data_file)["sha256"] == sha256sum(data_file)
    assert len(calls) == 2


def test_a_pinned_file_trains_and_another_is_refused_before_anything(
    tmp_path: Path, data_file: Path, capsys: Any
) -> None:
    sha = sha256sum(data_file)
    pinned = config_on(tmp_path, data_file, "pinned", sha256=sha.upper())
    code, _, err = run_cli(["train", "--config", str(pinned), "--quiet"], capsys)
    assert code == 0, err
    config = written_config(tmp_path / "pinned")
    assert config["dataset"]["sha256"] == sha
    free = load_config(config_on(tmp_path, data_file, "pinned", "free.yaml"))  # no pin
    assert load_config(pinned).dataset.sha256 == sha
    assert load_config(pinned).result_hash() == free.result_hash()  # a pin changes no result
    assert "sha256" not in free.to_dict()["dataset"]  # unset: not written

    other = "0" * 64
    wrong = config_on(tmp_path, data_file, "wrong", sha256=other)
    code, _, err = run_cli(["train", "--config", str(wrong), "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"has sha256 {sha}, but dataset.sha256 pins {other}" in err
    trained = [p.name for p in (tmp_path / "wrong").rglob("*") if p.is_file()]
    assert trained == [".lock"] or trained == [], trained  # no config, status or CSV

    bad = config_on(tmp_path, data_file, "bad", sha256="abc")
    code, _, err = run_cli(["train", "--config", str(bad), "--quiet"], capsys)
    assert code == 2 and "dataset.sha256: must be 64 hexadecimal digits" in err, err
