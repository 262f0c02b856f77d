"""Sweep specification: seeds, grid flags, sweep files, expansion and run naming (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from samrl.config.launchers import RayLauncher
from samrl.errors import ConfigError
from samrl.sweep.grid import (
    SweepSpec,
    check_grids,
    expand,
    grid_points,
    load_sweep_file,
    parse_grid_flag,
    parse_seeds,
    split_values,
)
from samrl.sweep.state import sweep_changes, sweep_record

BASE: dict[str, Any] = {
    "name": "base",
    "algo": {"name": "td3_plus_bc", "params": {"batch_size": 32}},
    "dataset": {"name": "pendulum-random", "size": 2000},
    "optim": {"name": "sam", "rho": 0.05},
    "train": {"n_steps": 20, "n_steps_per_epoch": 10, "eval_episodes": 0, "device": "cpu"},
}


def spec(tmp_path: Path, **fields: Any) -> SweepSpec:
    return SweepSpec(
        name=fields.pop("name", "s"),
        base=fields.pop("base", BASE),
        source="sweep.yaml",
        out=str(tmp_path),
        **fields,
    )


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0-4", [0, 1, 2, 3, 4]), ("0,2,5-6", [0, 2, 5, 6]), ([3, 1], [3, 1]), (7, [7]), ("2", [2])],
)
def test_parse_seeds(text: Any, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["4-2", "a", "0,0", [], [-1], [1.5], True, "1-"])
def test_bad_seeds(text: Any) -> None:
    with pytest.raises(ConfigError, match="seeds"):
        parse_seeds(text)


def test_grid_flag_values_are_yaml_and_brackets_keep_commas() -> None:
    assert split_values("0,0.05,[critic,actor],'a,b'") == ["0", "0.05", "[critic,actor]", "'a,b'"]
    key, values = parse_grid_flag("optim.networks=[critic],[critic,actor]")
    assert key == "optim.networks"
    assert values == [["critic"], ["critic", "actor"]]
    # scientific notation is a float (issue 12; PyYAML alone reads YAML 1.1: a string)
    assert parse_grid_flag("optim.rho=0,0.01,1e-1")[1] == [0, 0.01, 0.1]
    for bad in ("optim.rho", "optim.rho=", "=1,2", "optim..rho=1"):
        with pytest.raises(ConfigError, match="--grid"):
            parse_grid_flag(bad)


def test_cartesian_product_order() -> None:
    points = grid_points({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(points) == 6
    assert points[0] == {"a": 1, "b": "x"} and points[1] == {"a": 1, "b": "y"}


def test_expand_grid_times_seeds_paired(tmp_path: Path) -> None:
    plans = expand(
        spec(tmp_path, grid={"optim.rho": [0, 0.05], "algo.name": ["td3_plus_bc", "iql"]},
             seeds=[0, 1, 2])
    )  # fmt: skip
    assert len(plans) == 12
    assert len({p.run_id for p in plans}) == 12
    by_point: dict[str, set[int]] = {}
    for plan in plans:
        key = repr(sorted(plan.point.items()))
        by_point.setdefault(key, set()).add(plan.seed)
        config = plan.config
        assert config.train.seed == plan.seed
        assert config.dataset == plans[0].config.dataset  # the same data everywhere
        assert config.sweep == {"name": "s", "point": plan.point}
        assert plan.run_dir == tmp_path.resolve() / "s" / "runs" / plan.run_id
    assert all(seeds == {0, 1, 2} for seeds in by_point.values())
    ids = {p.run_id for p in plans}
    assert "td3_plus_bc_pendulum-random_sam-rho0_s0" in ids
    assert "iql_pendulum-random_sam-rho0.05_s2" in ids


def test_run_ids_name_other_grid_keys(tmp_path: Path) -> None:
    plans = expand(
        spec(
            tmp_path,
            grid={"algo.params.batch_size": [16, 32], "optim.base": ["adam", "sgd"]},
            seeds=[0],
        )
    )
    ids = [p.run_id for p in plans]
    assert ids[0] == "td3_plus_bc_pendulum-random_sam-rho0.05_batch_size16_base-adam_s0"
    assert len(set(ids)) == 4


def test_run_ids_for_rho_under_adam_stay_unique(tmp_path: Path) -> None:
    base = {**BASE, "optim": {"name": "adam"}}
    plans = expand(spec(tmp_path, base=base, grid={"optim.rho": [0.0, 0.1]}))
    assert [p.run_id for p in plans] == [
        "td3_plus_bc_pendulum-random_adam_rho0_s0",
        "td3_plus_bc_pendulum-random_adam_rho0.1_s0",
    ]


def test_colliding_labels_use_full_key_paths(tmp_path: Path) -> None:
    base = {**BASE, "optim": {"name": "adam", "probe": {"every": 5}}}
    plans = expand(
        spec(tmp_path, base=base, grid={"optim.rho": [0.1], "optim.probe.rho": [0.05, 0.2]})
    )
    assert plans[0].run_id == "td3_plus_bc_pendulum-random_adam_optim-rho0.1_optim-probe-rho0.05_s0"


def test_invalid_grid_point_names_point_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        expand(spec(tmp_path, grid={"optim.rho": [0.05, -1]}))
    text = str(info.value)
    assert "grid point optim.rho=-1" in text and "optim.rho: must be >= 0" in text


def test_set_overrides_apply_to_every_run(tmp_path: Path) -> None:
    plans = expand(spec(tmp_path, overrides=[("train.n_steps", 30)], seeds=[0, 1]))
    assert {p.config.train.n_steps for p in plans} == {30}


def test_sweep_file_base_relative_to_file(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "base.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "sweeps").mkdir()
    path = tmp_path / "sweeps" / "rho.yaml"
    path.write_text(
        "base: ../cfg/base.yaml\ngrid: {optim.rho: [0, 0.1]}\nseeds: 0-1\n"
        "set: {train.n_steps: 40}\njobs: 2\nlauncher: {type: ray, num_cpus: 1}\n"
    )
    loaded = load_sweep_file(path)
    assert loaded.name == "rho" and loaded.seeds == [0, 1] and loaded.jobs == 2
    assert loaded.launcher == RayLauncher(num_cpus=1)
    assert loaded.launcher.to_dict() == {"type": "ray", "num_cpus": 1}
    assert loaded.overrides == [("train.n_steps", 40)]
    assert loaded.base["algo"]["name"] == "td3_plus_bc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grid: {optim.rho: [0]}\n", "exactly one"),
        ("config: {}\nbase: x.yaml\n", "exactly one"),
        ("base: missing.yaml\n", "base: config file"),
        ("config: {}\ngrids: {}\n", "unknown sweep key 'grids' (did you mean 'grid'?)"),
        ("config: {}\ngrid: {train.seed: [1]}\n", "grid.train.seed: cannot be a grid key"),
        ("config: {}\ngrid: {optim.rho: []}\n", "grid.optim.rho: needs at least one value"),
        ("config: {}\ngrid: {optim.rho: [1, 1]}\n", "repeated value"),
        ("config: {}\nseeds: 3-1\n", "seeds: empty seed range"),
        ("config: {}\nlauncher: {type: pbs}\n", "unknown launcher 'pbs'"),
        ("config: {}\nlauncher: {type: ray, partition: x}\n", "unknown key for launcher 'ray'"),
        ("config: {}\njobs: 0\n", "jobs: must be an integer >= 1"),
        ("config: {}\nname: 'a b'\n", "name: use letters"),
        ("config: [1]\n", "config: must be a mapping"),
        ("config: {}\nset: 3\n", "set: must be a mapping"),
        ("config: {\n", "malformed YAML"),
    ],
)
def test_bad_sweep_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_sweep_file(path)
    assert expected in str(info.value)
    assert str(info.value).startswith(str(path))


def test_changed_sweep_is_detected(tmp_path: Path) -> None:
    first = spec(tmp_path, grid={"optim.rho": [0, 0.05]})
    record = sweep_record(first, expand(first))
    more_seeds = spec(tmp_path, grid={"optim.rho": [0, 0.05]}, seeds=[0, 1])
    assert sweep_changes(record, sweep_record(more_seeds, expand(more_seeds))) == []
    other = spec(tmp_path, grid={"optim.rho": [0, 0.1]}, overrides=[("train.n_steps", 30)])
    changes = sweep_changes(record, sweep_record(other, expand(other)))
    assert changes == ["grid optim.rho: [0, 0.05] -> [0, 0.1]", "train.n_steps: 20 -> 30"]


def test_a_list_grid_is_the_union_of_its_products(tmp_path: Path) -> None:
    path = tmp_path / "union.yaml"
    sam = {"optim.networks": [["actor"], ["critic"]], "optim.rho": [0.01, 0.1]}
    path.write_text(
        yaml.safe_dump(
            {"name": "u", "config": BASE, "grid": [sam, {"optim.name": ["adam"]}], "seeds": "0-1"}
        )
    )
    loaded = load_sweep_file(path)
    loaded.out = str(tmp_path)
    assert loaded.grid == {**sam, "optim.name": ["adam"]}
    plans = expand(loaded)
    assert len(plans) == (4 + 1) * 2
    adam = [p for p in plans if p.config.optim.name == "adam"]
    assert [p.point for p in adam] == [{"optim.name": "adam"}] * 2
    assert {p.run_id for p in adam} == {
        "td3_plus_bc_pendulum-random_adam_s0",
        "td3_plus_bc_pendulum-random_adam_s1",
    }
    nets = {tuple(p.config.optim.networks) for p in plans if p not in adam}
    assert nets == {("actor",), ("critic",)}
    record = sweep_record(loaded, plans)
    assert record["grids"] == [sam, {"optim.name": ["adam"]}]
    changed = {**record, "grids": [sam]}
    assert any("grid list" in c for c in sweep_changes(changed, record))
    path.write_text(yaml.safe_dump({"name": "u", "config": BASE, "grid": [sam, 3]}))
    with pytest.raises(ConfigError, match="list grid must hold mappings"):
        load_sweep_file(path)


def test_the_shipped_study_measures_every_run_at_one_radius() -> None:
    study = load_sweep_file(Path(__file__).parent.parent / "configs/sweeps/study.yaml")
    plans = expand(study)
    assert len(plans) == (3 * 3 + 1) * 3 * 5
    assert {p.config.algo.name for p in plans} == {"td3_plus_bc", "iql", "cql"}
    for plan in plans:
        probe = plan.config.optim.probe
        assert probe.rho == 0.05 and set(probe.networks) == {"critic", "actor"}
    variants = {(p.config.optim.name, tuple(p.config.optim.networks)) for p in plans}
    assert variants == {
        ("sam", ("actor",)),
        ("sam", ("critic",)),
        ("sam", ("critic", "actor")),
        ("adam", ("actor", "critic")),
    }


def test_a_key_with_one_value_is_a_setting_named_only_where_ids_collide(tmp_path: Path) -> None:
    # One algorithm's own parameter, set in that algorithm's grid: not an axis of the sweep.
    bear = {"algo.name": ["bear"], "algo.params.warmup_steps": [5]}
    merged, grids = check_grids([{"algo.name": ["td3_plus_bc"]}, bear])
    plans = expand(spec(tmp_path, grid=merged, grids=grids))
    assert [p.run_id for p in plans] == [
        "td3_plus_bc_pendulum-random_sam-rho0.05_s0",
        "bear_pendulum-random_sam-rho0.05_s0",
    ]
    assert plans[1].config.algo.params["warmup_steps"] == 5
    # Two grids whose points differ only in such settings would collide: then they are named.
    merged, grids = check_grids([{"algo.params.batch_size": [16]}, {"optim.base": ["sgd"]}])
    plans = expand(spec(tmp_path, grid=merged, grids=grids))
    assert [p.run_id for p in plans] == [
        "td3_plus_bc_pendulum-random_sam-rho0.05_batch_size16_s0",
        "td3_plus_bc_pendulum-random_sam-rho0.05_base-sgd_s0",
    ]


def test_the_seed_tables_iql_and_cql_cells_are_the_studys_rho_005_runs(tmp_path: Path) -> None:
    # configs/sweeps/seed_table.yaml leaves IQL and CQL out and `samrl seed-table --also
    # results/study` takes them from the study: that is only sound while the seed table's
    # settings, given the study's IQL and CQL grids at rho 0.05, make the very same runs.
    root = Path(__file__).parent.parent / "configs/sweeps"
    study_raw = yaml.safe_load((root / "study.yaml").read_text())
    seed_raw = yaml.safe_load((root / "seed_table.yaml").read_text())
    grids = [
        {k: v for k, v in g.items() if k != "optim.rho"}
        for g in study_raw["grid"]
        if g["algo.name"][0] in ("iql", "cql")
    ]
    assert {a for g in seed_raw["grid"] for a in g["algo.name"]}.isdisjoint({"iql", "cql"})
    path = tmp_path / "seed_iql_cql.yaml"
    path.write_text(yaml.safe_dump({**seed_raw, "grid": grids}))
    seed_hashes = {p.config.result_hash() for p in expand(load_sweep_file(path))}
    study_hashes = {
        p.config.result_hash()
        for p in expand(load_sweep_file(root / "study.yaml"))
        if p.config.algo.name in ("iql", "cql")
        and (p.config.optim.name == "adam" or p.config.optim.rho == 0.05)
    }
    assert len(seed_hashes) == 2 * 4 * 5
    assert seed_hashes == study_hashes


def test_run_ids_leave_out_a_dataset_pin(tmp_path: Path) -> None:
    """Each dataset of a grid pinned by its sha256: the name already says which file it is, so
    the pin is no axis of the run id."""
    merged, grids = check_grids(
        [
            {"dataset.name": ["pendulum-random"], "dataset.sha256": ["a" * 64]},
            {"dataset.name": ["pendulum-medium"], "dataset.sha256": ["b" * 64]},
        ]
    )
    plans = expand(spec(tmp_path, grid=merged, grids=grids, seeds=[0]))
    assert [p.run_id for p in plans] == [
        "td3_plus_bc_pendulum-random_sam-rho0.05_s0",
        "td3_plus_bc_pendulum-medium_sam-rho0.05_s0",
    ]
    assert [p.config.dataset.sha256 for p in plans] == ["a" * 64, "b" * 64]
