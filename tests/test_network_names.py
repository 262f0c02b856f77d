"""Network names from one table (samrl/networks.py): single-optimizer algorithms name their
network (`q`, `policy`, `transformer`), `loss` (the old name) stays an alias, and run
directories written with the old names read as if written with the new ones."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import build, facts_of, tiny_config, train, write_config

from samrl.algos import algorithm_table
from samrl.analysis.network_loss import (
    check_network,
    evaluation_batch,
    network_loss_fn,
    networks_of,
    resolve_network,
)
from samrl.config import load_config
from samrl.errors import ConfigError, SamrlError
from samrl.networks import (
    LEGACY_SINGLE_NETWORK,
    OTHER_SINGLE_NETWORK,
    SINGLE_NETWORK,
    TITLES,
    legacy_columns,
    network_name,
)
from samrl.results.aggregate import summarize_run
from samrl.results.plots import read_curve, run_metrics
from samrl.results.runs import RunEntry, read_run_table
from samrl.run.train import run_training
from samrl.sam import SAMFactory
from samrl.sam.engine import sam_optimizers

SUFFIXES = ("_sharpness", "_loss_perturbed", "_grad_norm")


def test_every_single_optimizer_algorithm_has_its_own_name() -> None:
    table = algorithm_table()
    for name, facts in table.items():
        if list(facts.networks.values()) == ["optim_factory"]:
            assert facts.networks == {SINGLE_NETWORK[name]: "optim_factory"}, name
        assert LEGACY_SINGLE_NETWORK not in facts.networks, name
        assert OTHER_SINGLE_NETWORK not in facts.networks, name
    assert set(SINGLE_NETWORK) <= set(table)  # no row for an algorithm that does not exist
    assert set(SINGLE_NETWORK.values()) <= set(TITLES)
    assert network_name("optim", "dqn") == "q"
    assert network_name("vae_optim", "bcq") == "imitator"
    assert network_name("optim", "someone_elses_algorithm") == OTHER_SINGLE_NETWORK


@pytest.mark.parametrize("name", sorted(SINGLE_NETWORK))
def test_single_networks_report_under_their_name(name: str) -> None:
    algo, dataset = build(name, lambda net: SAMFactory(rho=0.05))
    net = SINGLE_NETWORK[name]
    assert set(sam_optimizers(algo)) == {net}
    assert set(networks_of(algo)) == {net}
    metrics = train(algo, dataset, name, n=2)[-1]
    assert {net + s for s in SUFFIXES} <= set(metrics)
    assert not [k for k in metrics if k.startswith(LEGACY_SINGLE_NETWORK + "_")], metrics


def test_loss_is_an_alias_in_configs(tmp_path: Path) -> None:
    def resolved(algo: str, **optim: Any) -> Any:
        raw = tiny_config(
            tmp_path,
            algo={"name": algo, "params": {"batch_size": 16}},
            dataset={"name": "cartpole-random", "size": 1000},
            optim={"name": "sam", "rho": 0.05, **optim},
            analysis={"hessian": {"networks": optim.get("networks")}},
        )
        return load_config(write_config(tmp_path, raw))

    old = resolved("dqn", networks=["loss"], probe={"networks": "loss"})
    new = resolved("dqn", networks=["q"], probe={"networks": "q"})
    assert old.optim.networks == ("q",)
    assert old.optim.probe.networks == ("q",)
    assert old.analysis.hessian.networks == ("q",)
    assert old.result_hash() == new.result_hash()
    # `loss` is no alias where there are several networks
    match = r"optim.networks\[0\]: unknown network for discrete_sac"
    with pytest.raises(ConfigError, match=match):
        resolved("discrete_sac", networks=["loss"])


def test_loss_is_an_alias_in_the_analyses() -> None:
    algo, dataset = build("dqn")
    batch = evaluation_batch(algo, dataset, 32, 0)
    assert resolve_network(algo, "loss") == "q"
    assert check_network(algo, "loss") is networks_of(algo)["q"]
    old, _ = network_loss_fn(algo, "loss", batch)
    new, _ = network_loss_fn(algo, "q", batch)
    assert float(old()) == float(new())
    cql, _ = build("cql")
    with pytest.raises(SamrlError, match="unknown network"):
        resolve_network(cql, "loss")


def _as_written_before_the_rename(run_dir: Path, to: Path) -> Path:
    """A copy of a DQN run directory as samrl wrote it when its network was called `loss`."""
    shutil.copytree(run_dir, to)
    sharpness = to / "sharpness.csv"
    header, rest = sharpness.read_text().split("\n", 1)
    old = ",".join(
        "loss_" + c.removeprefix("q_") if c.startswith("q_") else c for c in header.split(",")
    )
    sharpness.write_text(old + "\n" + rest)
    config = yaml.safe_load((to / "config.yaml").read_text())
    config["optim"]["networks"] = ["loss"]
    config["optim"]["probe"]["networks"] = ["loss"]
    (to / "config.yaml").write_text(yaml.safe_dump(config))
    for name, net in (("sharpness_posthoc.csv", "loss"), ("hessian_posthoc.csv", "loss")):
        (to / name).write_text((run_dir / name).read_text().replace(",q,", f",{net},"))
    return to


def test_results_read_old_run_directories_in_the_new_names(tmp_path: Path) -> None:
    raw = tiny_config(
        tmp_path,
        algo={"name": "dqn", "params": {"batch_size": 16}},
        dataset={"name": "cartpole-random", "size": 1000},
        optim={"name": "sam", "rho": 0.05, "probe": {"rho": 0.1, "every": 2}},
    )
    result = run_training(load_config(write_config(tmp_path, raw)), progress=False)
    assert result.status == "completed", result.message
    new = result.run_dir
    # post-hoc tables as `samrl sharpness` / `samrl hessian` write them (one net column)
    (new / "sharpness_posthoc.csv").write_text(
        "step,net,rho,worst_case,average_case\n30,q,0.1,0.5,0.25\n"
    )
    (new / "hessian_posthoc.csv").write_text("step,net,lambda_1,trace\n30,q,2.0,3.0\n")
    old = _as_written_before_the_rename(new, tmp_path / "old")
    columns = (old / "sharpness.csv").read_text().split("\n", 1)[0].split(",")
    assert {"loss_sharpness", "loss_loss_perturbed", "loss_grad_norm"} <= set(columns)
    assert "loss_rho0.1_sharpness" in columns

    a, b = summarize_run(RunEntry(old)), summarize_run(RunEntry(new))
    assert a.pop("run_dir") != b.pop("run_dir")
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] or _both_nan(a[k], b[k]) for k in a), (a, b)
    assert {"q_sharpness_last10", "posthoc_q_rho0.1_worst_case", "posthoc_q_lambda_1"} <= set(a)
    assert run_metrics(old) == run_metrics(new)
    for metric, file_name in run_metrics(new).items():
        assert read_curve(old, metric, file_name).equals(read_curve(new, metric, file_name))
    assert list(read_run_table(old, "sharpness.csv").columns) == list(
        read_run_table(new, "sharpness.csv").columns
    )


def _both_nan(a: Any, b: Any) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def test_legacy_columns_rename_only_network_prefixed_names_of_single_network_algorithms() -> None:
    columns = ["epoch", "loss", "loss_sharpness", "loss_rho0.05_sharpness", "td_loss"]
    assert legacy_columns(columns, "bc") == {
        "loss_sharpness": "policy_sharpness",
        "loss_rho0.05_sharpness": "policy_rho0.05_sharpness",
    }
    assert legacy_columns(columns, "cql") == {}
    assert facts_of("discrete_bcq").networks == {"q_imitator": "optim_factory"}


def test_resuming_a_run_from_before_the_rename_says_why_it_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run written when DQN's network was `loss` carries the hash of that config. Resuming it
    is refused with the reason (its columns), not as "a different config"."""
    import hashlib
    import json

    from conftest import run_cli

    raw = tiny_config(
        tmp_path,
        algo={"name": "dqn", "params": {"batch_size": 16}},
        dataset={"name": "cartpole-random", "size": 1000},
        optim={"name": "sam", "rho": 0.05, "probe": {"rho": 0.1, "every": 2}},
    )
    path = write_config(tmp_path, raw)
    result = run_training(load_config(path), progress=False)
    assert result.status == "completed", result.message
    (result.run_dir / "sharpness_posthoc.csv").write_text("step,net\n30,q\n")
    (result.run_dir / "hessian_posthoc.csv").write_text("step,net\n30,q\n")
    old = _as_written_before_the_rename(result.run_dir, tmp_path / "old")
    # the hash the code before the rename wrote: its definition applied to the old config
    written = yaml.safe_load((old / "config.yaml").read_text())
    results = {k: v for k, v in written.items() if k not in ("name", "output", "sweep", "samrl")}
    results["train"] = {k: v for k, v in results["train"].items() if k not in ("device", "threads")}
    text = json.dumps(results, sort_keys=True, default=str)
    written["samrl"]["config_hash"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    (old / "config.yaml").write_text(yaml.safe_dump(written))
    argv = ["train", "--config", str(path), "--resume", "--set", f"output.run_dir={old}"]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert "made before samrl named single networks" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
