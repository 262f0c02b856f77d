"""Files samrl reads from places others may have written (a run directory, a sweep, a saved
model, a dataset folder) never run code: a file whose unpickling would create a file is refused
and nothing appears. Each test also shows that the prepared file is armed: plain unpickling of
it does create the file, so a loader that unpickled it would fail the test."""

from __future__ import annotations

import json
import pathlib
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_SWEEP_BASE, crash_before_checkpoint, run_cli, tiny_config, write_config

from samrl.safeload import (
    StateTypeError,
    UnsafeFileError,
    decode_state,
    encode_state,
    load_learnable,
    load_torch,
)


class Touch:
    """Unpickling this creates `path`, as a prepared checkpoint could run anything else."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.path,))


def keep(path: Path) -> Path:
    """A copy of the prepared file, for `assert_armed` after a run may have replaced it."""
    copy = path.with_name(path.name + ".prepared")
    shutil.copyfile(path, copy)
    return copy


def assert_armed(path: Path, marker: Path, load: Any = torch.load) -> None:
    """Plain unpickling of `path` does create `marker`: the test could fail."""
    assert not marker.exists(), f"{marker} was created: something unpickled {path}"
    with path.open("rb") as f:
        load(f) if load is pickle.load else load(f, weights_only=False)
    assert marker.exists()
    marker.unlink()


def evil_state(path: Path, marker: Path, step: int) -> None:
    """A state file shaped like samrl's, with the payload inside."""
    torch.save(
        {"epoch": 2, "step": step, "grad_step": step, "model": f"model_step{step}.pt",
         "rng": {"python": Touch(marker)}},
        path,
    )  # fmt: skip


def td3_config(tmp_path: Path, n_steps: int = 80) -> dict[str, Any]:
    return tiny_config(
        tmp_path,
        algo=TINY_SWEEP_BASE["algo"],
        train={"n_steps": n_steps, "n_steps_per_epoch": 20, "device": "cpu"},
    )


def crashed_run(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]
) -> tuple[Path, Path]:
    """A run that crashed before its 4th checkpoint: (config path, run dir); checkpoints of
    steps 40 and 60 are kept."""
    path = write_config(tmp_path, config)
    with monkeypatch.context() as patch:
        crash_before_checkpoint(patch, 4)
        assert run_cli(["train", "--config", str(path), "--quiet"], capsys)[0] == 1
    return path, next((tmp_path / "runs").glob("*/*/status.json")).parent


def reference_tables(tmp_path: Path, config: dict[str, Any], capsys: Any) -> dict[str, bytes]:
    ref = {**config, "output": {"dir": str(tmp_path / "reference")}}
    code, _, err = run_cli(
        ["train", "--config", str(write_config(tmp_path, ref, "ref.yaml")), "--quiet"], capsys
    )
    assert code == 0, err
    run_dir = next((tmp_path / "reference").glob("*/*/status.json")).parent
    return {n: (run_dir / n).read_bytes() for n in ("loss.csv", "sharpness.csv")}


# ---------------------------------------------------------------- resume checkpoints


@pytest.mark.parametrize("tampered", ["state", "model"])
def test_resume_refuses_a_tampered_checkpoint_and_falls_back_identically(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, tampered: str
) -> None:
    config = td3_config(tmp_path)
    expected = reference_tables(tmp_path, config, capsys)
    path, run_dir = crashed_run(tmp_path, capsys, monkeypatch, config)
    marker = tmp_path / "pwned"
    if tampered == "state":
        bad = run_dir / "checkpoint" / "state_step60.pt"
        evil_state(bad, marker, 60)
    else:
        bad = run_dir / "checkpoint" / "model_step60.pt"
        torch.save({"critic": Touch(marker)}, bad)
        # d3rlpy's own torch.load leaves weights_only to torch's default, which this turns off
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    prepared = keep(bad)
    code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 0, err
    assert err.count("\n") == 1, err
    assert "unreadable" in err and "safe load refuses" in err and "step 40" in err
    assert not marker.exists()
    tables = {n: (run_dir / n).read_bytes() for n in ("loss.csv", "sharpness.csv")}
    assert tables == expected
    assert_armed(prepared, marker)


def test_the_only_checkpoint_tampered_is_one_line_exit_2(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = td3_config(tmp_path, n_steps=60)
    path = write_config(tmp_path, config)
    with monkeypatch.context() as patch:
        crash_before_checkpoint(patch, 2)
        assert run_cli(["train", "--config", str(path), "--quiet"], capsys)[0] == 1
    run_dir = next((tmp_path / "runs").glob("*/*/status.json")).parent
    (only,) = (run_dir / "checkpoint").glob("state_*.pt")
    marker = tmp_path / "pwned"
    evil_state(only, marker, 20)
    prepared = keep(only)
    code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"checkpoint {only} is unreadable" in err and "nothing in it was run" in err
    assert "--overwrite starts the run again" in err
    assert not marker.exists()
    assert_armed(prepared, marker)


def test_a_checkpoint_of_the_previous_format_resumes_identically(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """samrl before the safe format pickled the numpy RNG state as a numpy array (and saved
    every other value as it is): such a checkpoint still resumes, byte for byte."""
    config = td3_config(tmp_path)
    expected = reference_tables(tmp_path, config, capsys)
    path, run_dir = crashed_run(tmp_path, capsys, monkeypatch, config)
    for state_file in (run_dir / "checkpoint").glob("state_*.pt"):
        legacy = decode_state(load_torch(state_file))
        assert isinstance(legacy["rng"]["numpy"][1], np.ndarray)
        torch.save(legacy, state_file)  # what the old code wrote: a pickled numpy array
        with pytest.raises(pickle.UnpicklingError):
            torch.load(state_file, weights_only=True)  # not loadable by the plain safe load
    code, _, err = run_cli(["train", "--config", str(path), "--quiet", "--resume"], capsys)
    assert code == 0 and err == "", err
    assert {n: (run_dir / n).read_bytes() for n in ("loss.csv", "sharpness.csv")} == expected


def test_a_sweep_rerun_never_unpickles_a_tampered_run(tmp_path: Path, capsys: Any) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"config": TINY_SWEEP_BASE, "out": str(tmp_path / "out")}))
    code, out, _ = run_cli(["sweep", str(spec), "--quiet"], capsys)
    assert code == 0, out
    (run_dir,) = (tmp_path / "out").glob("*/runs/*")
    expected = (run_dir / "loss.csv").read_bytes()
    status = json.loads((run_dir / "status.json").read_text())
    status.update(status="interrupted", steps_done=10, epochs_done=1)
    (run_dir / "status.json").write_text(json.dumps(status))
    marker = tmp_path / "pwned"
    for state_file in (run_dir / "checkpoint").glob("state_*.pt"):
        evil_state(state_file, marker, int(state_file.stem.removeprefix("state_step")))
    prepared = keep(state_file)
    code, out, _ = run_cli(["sweep", str(spec), "--quiet"], capsys)
    assert not marker.exists()
    assert code != 0 and "1 failed" in out, out
    log = next((tmp_path / "out").glob("*/logs/*.log")).read_text()
    assert "safe load refuses" in log and "--overwrite" in log
    assert (run_dir / "loss.csv").read_bytes() == expected  # nothing was trained over it
    assert_armed(prepared, marker)


# ---------------------------------------------------------------- checkpoint state rules


def test_state_round_trip_keeps_types_and_bits(tmp_path: Path) -> None:
    state = {
        "a": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "f": np.float32(1.5),
        "t": torch.tensor([1.0, 2.0]),
        "nested": [1, 2.5, "x", None, True, (np.zeros(0, np.int16),)],
        3: {"k": np.array(np.nan)},
    }
    path = tmp_path / "s.pt"
    torch.save(encode_state(state), path)
    back = decode_state(torch.load(path, weights_only=True))
    assert back["a"].dtype == np.uint32 and back["a"].shape == (2, 3)
    np.testing.assert_array_equal(back["a"], state["a"])
    assert type(back["f"]) is np.float32 and back["f"] == 1.5
    assert torch.equal(back["t"], state["t"])
    assert back["nested"][:5] == [1, 2.5, "x", None, True]
    assert back["nested"][5][0].dtype == np.int16
    assert np.isnan(back[3]["k"]) and back[3]["k"].shape == ()
    assert back["a"].flags.writeable


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"x": {1, 2}}, "state.x: a builtins.set"),
        ({"x": [Path("p")]}, "state.x[0]: a pathlib"),
        ({"x": np.array([object()])}, "state.x: a numpy array of dtype object"),
        ({(1, 2): 0}, "state: key (1, 2)"),
        ({"x": b"raw"}, "state.x: a builtins.bytes"),  # torch's safe load refuses bytes
    ],
)
def test_state_outside_the_safe_types_is_refused_naming_its_place(value: Any, where: str) -> None:
    with pytest.raises(StateTypeError, match=f"^{re.escape(where)}"):
        encode_state(value)


# ---------------------------------------------------------------- saved models (.d3)


def test_load_learnable_equals_d3rlpys_and_refuses_a_prepared_file(
    tmp_path: Path, capsys: Any
) -> None:
    import d3rlpy

    config = td3_config(tmp_path, n_steps=20)
    code, _, err = run_cli(
        ["train", "--config", str(write_config(tmp_path, config)), "--quiet"], capsys
    )
    assert code == 0, err
    run_dir = next((tmp_path / "runs").glob("*/*/status.json")).parent
    (model,) = (run_dir / "d3rlpy").glob("model_*.d3")
    ours, theirs = load_learnable(model, "cpu:0"), d3rlpy.load_learnable(str(model), "cpu:0")
    assert type(ours) is type(theirs) and ours.config == theirs.config
    for name, module in theirs.impl.modules.__dict__.items():
        if isinstance(module, torch.nn.Module):
            mine = getattr(ours.impl.modules, name).state_dict()
            for key, tensor in module.state_dict().items():
                assert torch.equal(mine[key], tensor), (name, key)

    marker = tmp_path / "pwned"
    real = pickle.loads(model.read_bytes())
    with model.open("wb") as f:
        pickle.dump({**real, "extra": Touch(marker)}, f)
    with pytest.raises(UnsafeFileError, match="not allowed"):
        load_learnable(model)
    for command in (["hessian"], ["sharpness", "--rho", "0.05"], ["landscape"]):
        code, _, err = run_cli([*command, str(run_dir)], capsys)
        assert code == 2 and err.count("\n") == 1, (command, err)
        assert "loads safely" in err, err
    assert not marker.exists()
    assert_armed(model, marker, load=pickle.load)


# ---------------------------------------------------------------- Minari folders


def test_minari_folder_without_spaces_does_not_build_the_env_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without observation/action spaces Minari makes the env of metadata.json's env_spec to
    learn them, calling the entry point named there; samrl reads such a folder by hand."""
    pytest.importorskip("minari")
    from samrl.data import load_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    base = tmp_path / "minari" / "evil" / "set-v0"
    (base / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with h5py.File(base / "data" / "main_data.hdf5", "w") as f:
        group = f.create_group("episode_0")
        group.create_dataset("observations", data=rng.normal(size=(6, 3)).astype(np.float32))
        group.create_dataset("actions", data=rng.normal(size=(5, 1)).astype(np.float32))
        group.create_dataset("rewards", data=np.ones(5, np.float32))
        group.create_dataset("terminations", data=np.array([0, 0, 0, 0, 1], bool))
        group.create_dataset("truncations", data=np.zeros(5, bool))
    marker = tmp_path / "pwned"
    env_spec = {
        "id": "Evil-v0",
        "entry_point": "os:mkdir",
        "kwargs": {"path": str(marker)},
        "max_episode_steps": None,
        "reward_threshold": None,
        "nondeterministic": False,
        "order_enforce": True,
        "disable_env_checker": True,
        "additional_wrappers": [],
        "vector_entry_point": None,
    }
    meta = {"env_spec": json.dumps(env_spec), "dataset_id": "evil/set-v0"}
    (base / "data" / "metadata.json").write_text(json.dumps(meta))  # where Minari reads it
    ds = load_dataset("minari:evil/set-v0")
    assert ds.train.transition_count == 5
    assert not marker.exists()
    import minari

    with pytest.raises(Exception):  # noqa: B017 (whatever Minari raises after making the "env")
        minari.load_dataset("evil/set-v0")
    assert marker.exists()  # Minari itself does run it: the folder is armed
