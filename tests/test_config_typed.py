"""The resolved config is typed (frozen sections, attribute access) and its YAML form and result
hash are those samrl has always written: committed runs re-resolve to their recorded hash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from samrl.config import SECTIONS, Config, OptimSection, resolve
from samrl.config.sections import Section
from samrl.rundir import RunDir

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _raw(**optim: object) -> dict:
    return {
        "algo": {"name": "cql", "params": {"batch_size": 16}},
        "dataset": {"name": "pendulum-random", "size": 500},
        "optim": {"name": "looksam", "k": 3, "alpha": 0.5, **optim},
        "train": {"device": "cpu", "n_steps": 20, "n_steps_per_epoch": 10},
        "analysis": {"hessian": {"top_k": 2}},
    }


def test_committed_runs_re_resolve_to_their_recorded_hash_and_yaml() -> None:
    """A sweep compares a run's recorded config_hash with the one its config resolves to now;
    a change to the schema, a default or the hash must not make finished runs look foreign."""
    runs = sorted(p.parent for p in RESULTS.glob("*/runs/*/config.yaml"))
    assert len(runs) >= 24  # at least the pilot's
    for path in runs:  # the run record (samrl: ...) in config.yaml is ignored on reading
        run = RunDir(path)
        raw = run.read_config()
        config = resolve(raw, source=str(run.config_file), check_dataset=False)
        assert config.result_hash() == run.saved_hash(), path.name
        # the YAML written is byte for byte the one the run wrote (before its samrl section)
        assert run.config_file.read_text().startswith(config.to_yaml()), path.name


def test_sections_are_typed_and_frozen() -> None:
    config = resolve(_raw(), source="c.yaml", check_dataset=False)
    assert isinstance(config.optim, OptimSection) and isinstance(config.optim.rho, float)
    assert config.optim.networks == ("actor", "critic")
    assert config.optim.variant_params == {"k": 3, "alpha": 0.5}
    assert config.analysis.hessian is not None and config.analysis.hessian.top_k == 2
    assert config.train.device == "cpu" and config.output.loggers == ("file",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.optim.rho = 0.1  # type: ignore[misc]


def test_variant_keys_are_written_after_optims_own_in_the_order_given() -> None:
    config = resolve(_raw(rho=0.1), source="c.yaml", check_dataset=False)
    optim = config.to_dict()["optim"]
    assert list(optim) == ["name", "base", "rho", "networks", "params", "probe", "k", "alpha"]
    swapped = {**_raw(rho=0.1), "optim": {"alpha": 0.5, "name": "looksam", "k": 3, "rho": 0.1}}
    other = resolve(swapped, source="c.yaml", check_dataset=False)
    assert list(other.to_dict()["optim"])[-2:] == ["alpha", "k"]
    assert other.result_hash() == config.result_hash()  # the hash does not see key order


def test_where_and_how_fast_a_run_computes_is_not_in_the_hash() -> None:
    config = resolve(_raw(), source="c.yaml", check_dataset=False)
    moved = config.with_output(run_id="elsewhere", run_dir="/tmp/elsewhere")
    assert moved.run_dir == Path("/tmp/elsewhere") and moved.result_hash() == config.result_hash()
    threads = dataclasses.replace(config, train=dataclasses.replace(config.train, threads=4))
    assert threads.result_hash() == config.result_hash()
    seed = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=1))
    assert seed.result_hash() != config.result_hash()


def test_a_written_config_reads_back_as_the_same_sections() -> None:
    config = resolve(_raw(), source="c.yaml", check_dataset=False)
    again = Config.from_mapping(config.to_dict())
    assert again == config  # the source is not part of a config's value


def test_every_key_is_documented_on_its_field() -> None:
    def check(cls: type[Section]) -> None:
        for f in dataclasses.fields(cls):
            sub = f.metadata.get("section")
            if "doc" in f.metadata:
                doc = f.metadata["doc"]  # text, or read from a registry (optim.name's variants)
                assert (doc() if callable(doc) else doc).strip(), f"{cls.__name__}.{f.name}"
            if sub is not None:
                check(sub)

    for cls in SECTIONS.values():
        assert cls.keys(), cls
        check(cls)
