"""A rho sweep measured at one fixed radius: during training (optim.probe beside SAM) and post
hoc over the whole sweep (`samrl sharpness|hessian <sweep dir>`), reaching summary/aggregate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_cli


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fixed_radius")
    config = {
        "algo": {
            "name": "td3_plus_bc",
            "params": {
                "batch_size": 16,
                "actor_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
                "critic_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
            },
        },
        "dataset": {"name": "pendulum-random", "size": 600},
        "optim": {"name": "sam", "rho": 0.05, "probe": {"rho": 0.05, "every": 2}},
        "train": {"n_steps": 20, "n_steps_per_epoch": 10, "eval_episodes": 0, "device": "cpu"},
    }
    path = base / "base.yaml"
    path.write_text(yaml.safe_dump(config))
    from samrl.cli import main

    argv = ["sweep", "--config", str(path), "--rho", "0,0.1", "--out", str(base)]
    argv += ["--name", "rho", "--quiet", "--jobs", "1"]
    try:
        main(argv)
    except SystemExit as done:
        assert done.code in (0, None)
    return base / "rho"


def test_every_run_reports_sharpness_at_the_probe_radius(sweep_dir: Path):
    runs = sorted(p.parent for p in sweep_dir.glob("runs/*/sharpness.csv"))
    assert len(runs) == 2
    for run in runs:
        table = pd.read_csv(run / "sharpness.csv")
        for net in ("critic", "actor"):
            assert table[f"{net}_rho0.05_sharpness"].notna().all(), run.name
            assert table[f"{net}_rho0.05_loss_perturbed"].notna().all(), run.name
    rho0 = next(r for r in runs if "rho0_" in r.name or r.name.endswith("rho0_s0"))
    # rho = 0 trains like Adam and reports 0 at its own radius, yet a real value at 0.05.
    table = pd.read_csv(rho0 / "sharpness.csv")
    assert (table["critic_sharpness"] == 0).all()
    assert (table["critic_rho0.05_sharpness"] != 0).all()


def test_posthoc_over_a_sweep_reaches_summary_and_aggregate(
    sweep_dir: Path, capsys: pytest.CaptureFixture[str]
):
    argv = ["sharpness", str(sweep_dir), "--rho", "0.05", "--batch-size", "16"]
    code, out, err = run_cli([*argv, "--n-batches", "1", "--samples", "1"], capsys)
    assert code == 0, err
    assert "2 runs" in out and out.count("\n") == 1
    code, out, err = run_cli(["hessian", str(sweep_dir), "--n-transitions", "32"], capsys)
    assert code == 0, err
    assert run_cli(["summarize", str(sweep_dir)], capsys)[0] == 0
    summary = pd.read_csv(sweep_dir / "summary.csv")
    for _, row in summary.iterrows():
        posthoc = pd.read_csv(sweep_dir / row["run_dir"] / "sharpness_posthoc.csv")
        hessian = pd.read_csv(sweep_dir / row["run_dir"] / "hessian_posthoc.csv")
        for net in ("critic", "actor"):
            expected = posthoc.loc[posthoc["net"] == net, "worst_case"].iloc[-1]
            assert row[f"posthoc_{net}_rho0.05_worst_case"] == expected
            lam = hessian.loc[hessian["net"] == net, "lambda_1"].iloc[-1]
            assert row[f"posthoc_{net}_lambda_1"] == lam
    aggregate = pd.read_csv(sweep_dir / "aggregate.csv")
    for column in ("posthoc_critic_rho0.05_worst_case", "critic_rho0.05_sharpness_last10"):
        merged = aggregate.merge(summary, on="optim.rho")
        assert (merged[f"{column}_mean"] == merged[column]).all()  # one seed per point
