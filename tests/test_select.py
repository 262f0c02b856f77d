"""`samrl select`: the scoring math by hand, each d3rlpy signal against d3rlpy's own evaluator on
the loaded checkpoint, and bad input ending in one line with exit status 2.

One tiny sweep (two seeds of a TD3+BC run, 8-unit networks, 30 updates, a checkpoint and an
evaluation every 10) is trained once for the module."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli, tiny_config, write_config

from samrl.results import selection
from samrl.results.selection import random_regret, regret

pytestmark = pytest.mark.filterwarnings("ignore")


# --------------------------------------------------------------------------- math by hand


def test_regret_by_hand() -> None:
    scores = np.array([10.0, 30.0, 20.0, 5.0])
    td_error = np.array([0.5, 0.3, 0.1, 0.9])  # lower is better: picks index 2 (score 20)
    goodness = selection.oriented("td_error", td_error)
    assert regret(goodness, scores, 1) == 30.0 - 20.0
    assert regret(goodness, scores, 3) == 0.0  # top 3 are indices 2, 1, 0: 30 is among them
    value = np.array([3.0, 1.0, 2.0, 4.0])  # higher is better: picks index 3 (score 5)
    assert regret(selection.oriented("value_estimate", value), scores, 1) == 25.0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_random_regret_is_the_exact_expectation(k: int) -> None:
    scores = np.array([4.0, -1.0, 7.5, 2.0, 7.5])
    subsets = list(itertools.combinations(scores, k))
    expected = scores.max() - np.mean([max(s) for s in subsets])
    assert random_regret(scores, k) == pytest.approx(expected)
    assert random_regret(np.array([1.0, 2.0, 3.0]), 2) == pytest.approx(3 - 8 / 3)


def _rows(values: dict[str, list[float]], scores: list[float], run: str = "r0") -> pd.DataFrame:
    steps = [10 * (i + 1) for i in range(len(scores))]
    rows = [
        {"run": run, "run_id": run, "cell": "c", "algo": "iql", "seed": 0, "step": step}
        | {"signal": signal, "source": "x", "value": v, "score": s}
        for signal, vs in values.items()
        for step, v, s in zip(steps, vs, scores, strict=True)
    ]
    return pd.DataFrame(rows)


def test_within_run_spearman_and_baselines_by_hand() -> None:
    scores = [1.0, 4.0, 2.0, 3.0]
    rows = _rows({"critic_sharpness": [0.4, 0.1, 0.3, 0.2]}, scores)
    table = selection.within_run(rows).set_index("signal")
    # sharpness is lower-better: its goodness ranks 1, 4, 2, 3 = the scores' ranks
    assert table.loc["critic_sharpness", "spearman"] == pytest.approx(1.0)
    assert table.loc["critic_sharpness", "regret@1"] == 0.0
    # the last checkpoint (step 40) scores 3: regret 1; its best of the last 3 is 4: regret 0
    assert table.loc[selection.LAST, "regret@1"] == 1.0
    assert table.loc[selection.LAST, "regret@3"] == 0.0
    assert table.loc[selection.RANDOM, "regret@1"] == pytest.approx(4.0 - 2.5)


# --------------------------------------------------------------------------- a tiny sweep


def _tiny_run_config(tmp_path: Path, seed: int) -> dict:
    return tiny_config(
        tmp_path,
        name="select",
        algo={
            "name": "td3_plus_bc",
            "params": {
                "batch_size": 16,
                "actor_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
                "critic_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
            },
        },
        dataset={"name": "pendulum-random", "size": 1000, "test_fraction": 0.2},
        optim={
            "name": "sam",
            "rho": 0.05,
            "networks": ["critic"],
            "probe": {"rho": 0.05, "every": 2, "networks": ["critic", "actor"]},
        },
        train={
            "n_steps": 30,
            "n_steps_per_epoch": 10,
            "eval_episodes": 1,
            "save_interval": 1,
            "seed": seed,
            "device": "cpu",
        },
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/select/<run_id> x 2 seeds: one cell."""
    from samrl.cli import main

    tmp = tmp_path_factory.mktemp("select")
    for seed in (0, 1):
        path = write_config(tmp, _tiny_run_config(tmp, seed), f"s{seed}.yaml")
        main(["train", "--config", str(path), "--quiet"])
    return tmp / "runs" / "select"


@pytest.fixture(scope="module")
def selected(sweep: Path) -> pd.DataFrame:
    from samrl.cli import main

    main(["select", str(sweep), "--quiet", "--n-boot", "50", "--fqe-steps", "5"])
    return pd.read_csv(sweep / "selection.csv")


def test_select_writes_rows_table_and_figure(selected: pd.DataFrame, sweep: Path) -> None:
    assert set(selected["signal"]) == set(selection.SIGNALS)
    assert (
        selected.groupby("run")["step"].unique().map(sorted).map(list).tolist()
        == [[10, 20, 30]] * 2
    )
    assert set(selected.loc[selected["signal"].str.endswith("sharpness"), "source"]) == {"probe"}
    assert selected["score"].notna().all()
    for name in ("selection_table.csv", "selection_table.md", "selection_regret.png"):
        assert (sweep / name).is_file()


def test_one_spearman_and_one_regret_recomputed_by_hand(
    selected: pd.DataFrame, sweep: Path
) -> None:
    run = sorted(selected["run"].unique())[0]
    rows = selected[(selected["run"] == run) & (selected["signal"] == "td_error")]
    rows = rows.sort_values("step")
    evals = pd.read_csv(sweep / run / "eval.csv").set_index("step")["normalized_score"]
    scores = evals.loc[rows["step"]].to_numpy()
    td = rows["value"].to_numpy()
    # Spearman of -td_error with the score, by ranks (3 checkpoints, no ties expected)
    rx = pd.Series(-td).rank().to_numpy()
    ry = pd.Series(scores).rank().to_numpy()
    by_hand = np.corrcoef(rx, ry)[0, 1]
    chosen = scores[np.argmin(td)]
    table = selection.within_run(selected).set_index(["run", "signal"])
    assert table.loc[(run, "td_error"), "spearman"] == pytest.approx(by_hand)
    assert table.loc[(run, "td_error"), "regret@1"] == pytest.approx(scores.max() - chosen)


def _checkpoint_and_data(sweep: Path, run: str, step: int) -> tuple[Any, Any]:
    import d3rlpy

    import samrl
    from samrl.analysis.posthoc import run_dataset
    from samrl.rundir import RunDir

    samrl.register()
    run_dir = RunDir(sweep / run)
    algo = d3rlpy.load_learnable(str(run_dir.model_files()[step]), device="cpu:0")
    return algo, run_dataset(run_dir.read_config())


def test_each_d3rlpy_signal_equals_d3rlpy_evaluator(selected: pd.DataFrame, sweep: Path) -> None:
    from d3rlpy.metrics import (
        AverageValueEstimationEvaluator,
        InitialStateValueEstimationEvaluator,
        SoftOPCEvaluator,
        TDErrorEvaluator,
    )

    run, step = sorted(selected["run"].unique())[1], 20
    algo, data = _checkpoint_and_data(sweep, run, step)
    episodes = data.test_episodes
    threshold = float(np.median([e.compute_return() for e in episodes]))
    direct = {
        "td_error": TDErrorEvaluator(episodes),
        "value_estimate": AverageValueEstimationEvaluator(episodes),
        "initial_value": InitialStateValueEstimationEvaluator(episodes),
        "soft_opc": SoftOPCEvaluator(threshold, episodes),
    }
    mine = selected[(selected["run"] == run) & (selected["step"] == step)]
    mine = mine.set_index("signal")["value"]
    for name, evaluator in direct.items():
        assert mine[name] == pytest.approx(evaluator(algo, data.train), rel=1e-6), name
    assert mine["fqe"] == pytest.approx(_fqe_directly(algo, data), rel=1e-5)


def _fqe_directly(algo: object, data: object) -> float:
    import torch
    from d3rlpy.logging import NoopAdapterFactory
    from d3rlpy.metrics import InitialStateValueEstimationEvaluator
    from d3rlpy.ope import FQE, FQEConfig

    config = FQEConfig(
        observation_scaler=algo.config.observation_scaler,  # type: ignore[attr-defined]
        action_scaler=algo.config.action_scaler,  # type: ignore[attr-defined]
        reward_scaler=algo.config.reward_scaler,  # type: ignore[attr-defined]
    )
    fqe = FQE(algo=algo, config=config, device="cpu:0")  # type: ignore[arg-type]
    torch.manual_seed(0)
    np.random.seed(0)
    fqe.fit(
        data.train,  # type: ignore[attr-defined]
        n_steps=5,
        n_steps_per_epoch=5,
        logger_adapter=NoopAdapterFactory(),
        show_progress=False,
        save_interval=6,
    )
    evaluator = InitialStateValueEstimationEvaluator(data.test_episodes)  # type: ignore[attr-defined]
    return float(evaluator(fqe, data.train))  # type: ignore[attr-defined]


def test_sharpness_signal_is_the_probe_row_at_the_step(selected: pd.DataFrame, sweep: Path) -> None:
    run = sorted(selected["run"].unique())[0]
    probe = pd.read_csv(sweep / run / "sharpness.csv").set_index("step")
    mine = selected[(selected["run"] == run) & (selected["signal"] == "critic_sharpness")]
    for row in mine.itertuples():
        assert row.value == probe.loc[row.step, "critic_rho0.05_sharpness"]


def test_without_a_probe_sharpness_is_measured_post_hoc(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(sweep, tmp_path)
    frame = pd.read_csv(run / "sharpness.csv")
    frame.drop(columns=[c for c in frame if "rho0.05" in c]).to_csv(run / "sharpness.csv")
    args = ["select", str(run), "--quiet", "--signals", "critic_sharpness", "--n-boot", "20"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    rows = pd.read_csv(run / "selection.csv")
    assert set(rows["source"]) == {"posthoc"}
    assert rows["value"].map(math.isfinite).all()
    assert "selection.csv" in out.strip().splitlines()[-1]


# --------------------------------------------------------------------------- bad input


def _copy_run(sweep: Path, tmp_path: Path) -> Path:
    source = sorted(p for p in sweep.iterdir() if p.is_dir())[0]
    return Path(shutil.copytree(source, tmp_path / source.name))


def _edit_config(run: Path, key: str, field: str, value: object) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    config[key][field] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))


def _one_line_exit_2(
    run: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...] = ()
) -> str:
    code, _, err = run_cli(["select", str(run), "--quiet", *extra], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_run_without_checkpoints(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(sweep, tmp_path)
    for model in (run / "d3rlpy").glob("model_*.d3"):
        model.unlink()
    assert "no saved checkpoint" in _one_line_exit_2(run, capsys)


def test_run_without_held_out_episodes(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(sweep, tmp_path)
    _edit_config(run, "dataset", "test_fraction", 0.0)
    err = _one_line_exit_2(run, capsys)
    assert "no held-out episodes" in err and "td_error" in err


def test_checkpoints_of_another_algorithm(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(sweep, tmp_path)
    _edit_config(run, "algo", "name", "cql")
    err = _one_line_exit_2(run, capsys, ("--signals", "td_error"))
    assert "td3_plus_bc checkpoint" in err and "cql" in err


def test_unknown_signal(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["select", str(sweep), "--signals", "td_eror"], capsys)
    assert code == 2 and "did you mean 'td_error'" in err


def test_rowwise_iqm_matches_the_iqm_of_each_row() -> None:
    from samrl.results import stats
    from samrl.results.selection import _rowwise_nan_iqm

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(50, 7))
    matrix[rng.random(matrix.shape) < 0.2] = np.nan
    for row, value in zip(matrix, _rowwise_nan_iqm(matrix), strict=True):
        finite = row[~np.isnan(row)]
        assert value == pytest.approx(stats.iqm(finite)) if finite.size else np.isnan(value)


def test_cells_are_named_by_the_keys_that_vary() -> None:
    from samrl.analysis.select_cli import cell_labels

    hidden = {"algo.params.value_encoder_factory.params.hidden_units": [64, 64]}
    points = [
        {"algo.name": "iql", "optim.name": "adam", **hidden},
        {"algo.name": "iql", "optim.name": "sam", **hidden},
        {"algo.name": "cql", "optim.name": "sam", "optim.networks": ["critic"]},
    ]
    assert cell_labels(points) == ["iql adam", "iql sam", "cql sam"]


def test_figure_has_signals_on_one_axis_and_few_legend_entries(
    selected: pd.DataFrame, sweep: Path
) -> None:
    table = pd.read_csv(sweep / "selection_table.csv")
    figure = selection.regret_figure(table, "t")
    (ax,) = figure.axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[: len(selection.SIGNALS)] == list(selection.SIGNALS)
    assert len(ax.get_legend().get_texts()) <= 6


def test_a_sweep_leaves_out_runs_not_completed(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = Path(shutil.copytree(sweep, tmp_path / "sweep"))
    failed = sorted(p for p in copy.iterdir() if p.is_dir())[0]
    status = json.loads((failed / "status.json").read_text())
    (failed / "status.json").write_text(json.dumps({**status, "status": "failed"}))
    args = ["select", str(copy), "--quiet", "--signals", "td_error", "--n-boot", "20"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert "left out 1 run not completed" in err
    assert pd.read_csv(copy / "selection.csv")["run"].nunique() == 1
