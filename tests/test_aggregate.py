"""summary.csv / aggregate.csv from hand-made run directories (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers.runs import write_run, write_sweep

from samrl.errors import RunError, SamrlError
from samrl.results import stats
from samrl.results.aggregate import (
    last_fraction_mean,
    point_labels,
    summarize_runs,
    summarize_sweep,
)
from samrl.results.cli import summarize_cmd
from samrl.rundir import RunDir

N_BOOT = 200  # enough for the properties tested, keeps the suite fast


def test_last_fraction_mean_uses_ceil_of_ten_percent() -> None:
    frame = pd.DataFrame({"x": np.arange(1.0, 26.0)})  # 25 epochs -> last 3
    assert last_fraction_mean(frame)["x"] == pytest.approx((23 + 24 + 25) / 3)
    frame = pd.DataFrame({"x": np.arange(1.0, 31.0)})  # 30 epochs -> exactly 3, not 4
    assert last_fraction_mean(frame)["x"] == pytest.approx((28 + 29 + 30) / 3)
    assert last_fraction_mean(pd.DataFrame({"x": [5.0, 7.0]}))["x"] == 7.0  # at least one


def test_summary_row_by_hand(tmp_path: Path) -> None:
    # 12 epochs of sharpness -> ceil(1.2) = 2 last epochs: (11 + 12) / 2 * 0.1
    run = write_run(
        tmp_path / "r",
        rho=0.05,
        seed=3,
        score=30.0,
        n_epochs=12,
        sharpness=[0.1 * e for e in range(1, 13)],
    )
    summary, aggregate = summarize_runs([run], n_boot=N_BOOT)
    row = summary.iloc[0]
    assert row["critic_sharpness_last10"] == pytest.approx(1.15)
    assert row["critic_grad_norm_last10"] == pytest.approx(2.0)
    assert row["final_return"] == pytest.approx(30.0)
    assert row["best_return"] == pytest.approx(30.0)
    assert row["final_normalized_score"] == pytest.approx(15.0)
    assert row["last_critic_loss"] == pytest.approx(1 / 12)
    assert row["last_actor_loss"] == pytest.approx(-12.0)
    assert row["optim.rho"] == 0.05 and row["seed"] == 3 and row["status"] == "completed"
    assert row["wall_time_s"] == 12.5 and row["steps_done"] == 120
    assert list(aggregate["n"]) == [1]


def test_summary_without_eval_gives_nan(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", rho=0.0, seed=0)
    (run / "eval.csv").unlink()
    (run / "sharpness.csv").write_text("")  # created but nothing written yet
    summary, _ = summarize_runs([run], n_boot=N_BOOT)
    assert np.isnan(summary.loc[0, "final_return"])
    assert np.isnan(summary.loc[0, "best_normalized_score"])
    assert not any(c.endswith("_last10") for c in summary)


# --------------------------------------------------------------------------- aggregate


def test_aggregate_numbers_by_hand(tmp_path: Path) -> None:
    scores = {0.0: [1.0, 2.0, 3.0, 4.0, 100.0], 0.05: [2.0, 3.0, 4.0, 5.0, 6.0]}
    sweep = write_sweep(tmp_path / "sw", scores)
    summary, aggregate = summarize_sweep(sweep, n_boot=N_BOOT, seed=1)
    assert (sweep / "summary.csv").is_file() and (sweep / "aggregate.csv").is_file()
    assert len(summary) == 10 and list(aggregate["optim.rho"]) == [0.0, 0.05]
    base, sam = aggregate.iloc[0], aggregate.iloc[1]
    assert list(aggregate["label"]) == ["rho=0", "rho=0.05"]
    assert base["n"] == 5 and sam["n"] == 5
    # IQM of [1, 2, 3, 4, 100]: trim_mean drops int(1.25) = 1 value per end -> mean(2, 3, 4)
    assert base["final_return_iqm"] == pytest.approx(3.0)
    assert base["final_return_mean"] == pytest.approx(22.0)
    assert base["final_return_std"] == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    assert base["final_normalized_score_iqm"] == pytest.approx(1.5)
    assert base["final_return_ci_low"] <= base["final_return_iqm"] <= base["final_return_ci_high"]
    # sharpness columns: last ceil(0.4) = 1 epoch -> rho
    assert sam["critic_sharpness_last10_iqm"] == pytest.approx(0.05)
    # P(X > Y) + 0.5 P(X = Y) on normalized scores (returns / 2), all 25 pairs:
    x, y = np.array(scores[0.05]), np.array(scores[0.0])
    by_hand = sum((a > b) + 0.5 * (a == b) for a in x for b in y) / 25
    assert sam["prob_improvement"] == pytest.approx(by_hand)
    assert sam["prob_improvement_ci_low"] <= by_hand <= sam["prob_improvement_ci_high"]
    assert sam["baseline"] == "rho=0" and bool(sam["prob_improvement_paired"])
    assert sam["prob_improvement_metric"] == "headline_normalized_score"
    assert np.isnan(base["prob_improvement"]) and pd.isna(base["baseline"])
    # written atomically and readable back with the same numbers
    again = pd.read_csv(sweep / "aggregate.csv")
    assert again["final_return_iqm"].tolist() == pytest.approx(aggregate["final_return_iqm"])


def test_aggregate_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sw", {0.0: [1.0, 5.0, 2.0], 0.1: [3.0, 4.0, 9.0]})
    first = summarize_sweep(sweep, n_boot=N_BOOT, seed=7)[1]
    second = summarize_sweep(sweep, n_boot=N_BOOT, seed=7)[1]
    pd.testing.assert_frame_equal(first, second)


def test_partly_finished_sweep(tmp_path: Path) -> None:
    statuses = {
        "cql_pendulum-medium_sam-rho0.1_s1": "running",
        "cql_pendulum-medium_sam-rho0.1_s2": "diverged",
        "cql_pendulum-medium_sam-rho0.0_s2": "failed",
    }
    sweep = write_sweep(tmp_path / "sw", {0.0: [1.0, 2.0, 3.0], 0.1: [4.0, 5.0, 6.0]}, statuses)
    # one more run listed in sweep.json whose directory does not exist yet
    spec = json.loads((sweep / "sweep.json").read_text())
    spec["runs"].append(
        {"run_id": "later", "dir": "runs/later", "point": {"optim.rho": 0.1}, "seed": 3}
    )
    (sweep / "sweep.json").write_text(json.dumps(spec))
    # `running` is believed while a process holds the run; nobody holding it means killed
    live = RunDir(sweep / "runs" / "cql_pendulum-medium_sam-rho0.1_s1")
    assert summarize_sweep(sweep, n_boot=N_BOOT)[0]["status"].value_counts()["interrupted"] == 1
    with live.lock():
        summary, aggregate = summarize_sweep(sweep, n_boot=N_BOOT)
    assert summary["status"].value_counts().to_dict() == {
        "completed": 3,
        "running": 1,
        "diverged": 1,
        "failed": 1,
        "pending": 1,
    }
    assert summary.set_index("run_id").loc["later", "optim.rho"] == 0.1
    base, sam = aggregate.iloc[0], aggregate.iloc[1]
    assert (base["n"], base["n_failed"], base["n_runs"]) == (2, 1, 3)
    assert (sam["n"], sam["n_diverged"], sam["n_unfinished"], sam["n_runs"]) == (1, 1, 2, 4)
    assert sam["final_return_iqm"] == pytest.approx(4.0)  # only the completed seed 0
    # seeds {0} vs {0, 1}: not the same set -> unpaired bootstrap
    assert sam["prob_improvement"] == pytest.approx(1.0)
    assert not bool(sam["prob_improvement_paired"])


def test_a_pending_run_joins_its_grid_point(tmp_path: Path) -> None:
    # rho, networks and the dataset are not grid keys: a run not started has no config.yaml to
    # say them, so they come from the sweep's base config at its point (else the run forms a
    # row of its own, with rho NaN, beside its point's completed runs)
    sweep = tmp_path / "sw"
    base = {
        "algo": {"name": "cql", "params": {"batch_size": 32}},
        "dataset": {"name": "pendulum-medium", "size": 1000},
        "optim": {"name": "sam", "rho": 0.05, "networks": ["critic"]},
        "train": {"n_steps": 40, "n_steps_per_epoch": 10},
    }
    runs = []
    for optim in ("adam", "sam"):
        for seed in (0, 1):
            run_id = f"{optim}_s{seed}"
            if seed == 0:
                write_run(
                    sweep / "runs" / run_id,
                    rho=0.05,
                    seed=seed,
                    optim=optim,
                    sweep_point={"optim.name": optim},
                )
            point = {"optim.name": optim}
            runs.append({"run_id": run_id, "dir": f"runs/{run_id}", "point": point, "seed": seed})
    spec = {"name": "toy", "base_config": base, "grid": {"optim.name": ["adam", "sam"]}}
    (sweep / "sweep.json").write_text(json.dumps({**spec, "seeds": [0, 1], "runs": runs}))
    summary, aggregate = summarize_sweep(sweep, n_boot=N_BOOT)
    pending = summary.set_index("run_id").loc["sam_s1"]
    assert pending["status"] == "pending"
    assert (pending["optim.rho"], pending["dataset.name"]) == (0.05, "pendulum-medium")
    assert json.loads(pending["optim.networks"]) == ["critic"]
    assert list(aggregate["optim.name"]) == ["adam", "sam"]
    assert list(aggregate["n_runs"]) == [2, 2] and list(aggregate["n"]) == [1, 1]


def test_scan_without_sweep_json_and_adam_baseline(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    for seed, (adam, sam) in enumerate([(1.0, 2.0), (3.0, 1.0)]):
        point = {"optim.name": "adam", "optim.rho": 0.05}
        write_run(
            root / f"adam_s{seed}", rho=0.05, seed=seed, score=adam, optim="adam", sweep_point=point
        )
        write_run(
            root / "nested" / f"sam_s{seed}",
            rho=0.05,
            seed=seed,
            score=sam,
            sweep_point={"optim.name": "sam", "optim.rho": 0.05},
        )
    summary, aggregate = summarize_sweep(root, n_boot=N_BOOT)
    assert len(summary) == 4
    by_label = aggregate.set_index("label")
    assert set(by_label.index) == {"adam", "sam"}
    # sam [2, 1] vs adam [1, 3]: (2>1) (2<3) (1=1) (1<3) -> 1.5 / 4
    assert by_label.loc["sam", "prob_improvement"] == pytest.approx(0.375)
    assert by_label.loc["sam", "baseline"] == "adam"


def test_baseline_shares_the_other_grid_keys(tmp_path: Path) -> None:
    root = tmp_path / "sw"
    scores = {
        ("a", 0.0): [1.0, 2.0],
        ("a", 0.1): [3.0, 4.0],
        ("b", 0.0): [5.0, 6.0],
        ("b", 0.1): [0.0, 1.0],
    }
    for (dataset, rho), per_seed in scores.items():
        for seed, score in enumerate(per_seed):
            point = {"dataset.name": dataset, "optim.rho": rho}
            write_run(
                root / f"{dataset}_{rho}_s{seed}",
                rho=rho,
                seed=seed,
                score=score,
                sweep_point=point,
            )
    _, aggregate = summarize_sweep(root, n_boot=N_BOOT)
    by_label = aggregate.set_index("label")
    assert list(by_label.index) == ["a rho=0", "a rho=0.1", "b rho=0", "b rho=0.1"]
    assert by_label.loc["a rho=0.1", "baseline"] == "a rho=0"
    assert by_label.loc["a rho=0.1", "prob_improvement"] == 1.0
    assert by_label.loc["b rho=0.1", "baseline"] == "b rho=0"
    assert by_label.loc["b rho=0.1", "prob_improvement"] == 0.0


def test_runs_outside_a_sweep_group_by_default_keys(tmp_path: Path) -> None:
    runs = [write_run(tmp_path / f"r{s}", rho=0.05, seed=s, sweep_point={}) for s in range(2)]
    _, aggregate = summarize_runs(runs, n_boot=N_BOOT)
    assert {"algo.name", "dataset.name", "optim.name", "optim.rho"} <= set(aggregate.columns)
    assert list(aggregate["n"]) == [2]


def test_point_labels_disambiguate() -> None:
    points = [{"optim.name": "adam", "optim.rho": 0.0}, {"optim.name": "sam", "optim.rho": 0.1}]
    assert point_labels(points, ["optim.name", "optim.rho"]) == ["adam", "sam rho=0.1"]
    assert point_labels(points[1:], ["optim.rho"]) == ["all runs"]
    # An algorithm's own setting (missing for the other algorithm) is no axis of the labels.
    nan = float("nan")
    keys = ["algo.name", "optim.name", "algo.params.value_encoder_factory.type"]
    points = [
        {"algo.name": "iql", "optim.name": "adam", keys[2]: "vector"},
        {"algo.name": "iql", "optim.name": "sam", keys[2]: "vector"},
        {"algo.name": "cql", "optim.name": "adam", keys[2]: nan},
    ]
    assert point_labels(points, keys) == ["iql adam", "iql sam", "cql adam"]
    points[1][keys[2]] = "default"  # two values: now an axis
    assert point_labels(points, keys) == [
        "iql adam type=vector",
        "iql sam type=default",
        "cql adam",
    ]


def test_not_a_sweep_dir(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no such directory"):
        summarize_sweep(tmp_path / "missing")
    with pytest.raises(RunError, match="not a sweep or run directory"):
        summarize_sweep(tmp_path)


# --------------------------------------------------------------------------- command


def test_summarize_command(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sw", {0.0: [1.0, 2.0], 0.05: [2.0, 3.0]})
    result = CliRunner().invoke(summarize_cmd, [str(sweep), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    last_line = result.output.strip().splitlines()[-1]
    assert str(sweep / "summary.csv") in last_line and "4 runs" in last_line
    assert (sweep / "aggregate.csv").is_file()


def test_summarize_command_user_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(summarize_cmd, [str(tmp_path / "nope")])
    assert isinstance(result.exception, SamrlError)
    assert "example" in CliRunner().invoke(summarize_cmd, ["--help"]).output.lower()


def test_stats_module_is_used_for_iqm() -> None:
    # guard: aggregate's IQM is the stats one (rliable semantics)
    assert stats.iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)
