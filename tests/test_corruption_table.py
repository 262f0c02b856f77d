"""samrl corruption-table on hand-made run directories: every number recomputed another way
(IQM as scipy's 25% trimmed mean, P(improvement) by counting pairs, the paper's means by hand),
clean Adam levels that ignore corrupted runs, and the command's files and errors."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_cli
from helpers.runs import write_run
from scipy.stats import trim_mean

from samrl.data.corruption import CLEAN, condition_of
from samrl.results.aggregate import compute_sweep_tables
from samrl.results.corruption_reference import paper_score, paper_tasks
from samrl.results.corruption_table import compute_corruption_table

N_BOOT = 200
OBS = {"mode": "random", "fields": ["observations"], "rate": 0.3, "scale": 1.0}
MIXED = {
    "mode": "random",
    "fields": ["observations", "actions", "rewards", "next_observations"],
    "rate": 0.3,
    "scale": 1.0,
}
# (algo, corruption, optimizer) -> final scores of seeds 0..3
SCORES = {
    ("iql", None, "adam"): [60.0, 70.0, 80.0, 90.0],
    ("iql", None, "sam"): [50.0, 55.0, 65.0, 100.0],
    ("iql", "obs", "adam"): [10.0, 20.0, 30.0, 40.0],
    ("iql", "obs", "sam"): [31.0, 41.0, 51.0, 61.0],
    ("riql", "mixed", "adam"): [5.0, 15.0, 25.0, 35.0],
    ("riql", "mixed", "sam"): [6.0, 14.0, 24.0, 36.0],
}
CORRUPTIONS = {None: None, "obs": OBS, "mixed": MIXED}


def _write_sweep(root: Path) -> Path:
    for (algo, corruption, optim), scores in SCORES.items():
        for seed, score in enumerate(scores):
            point = {"algo.name": algo, "optim.name": optim, "corruption": str(corruption)}
            run = write_run(
                root / f"{algo}_{corruption}_{optim}_s{seed}",
                rho=0.05,
                seed=seed,
                score=2 * score,  # write_run's normalized score is half its return
                optim=optim,
                sweep_point=point,
            )
            config = yaml.safe_load((run / "config.yaml").read_text())
            config["algo"]["name"] = algo
            config["optim"]["networks"] = ["critic"]
            if CORRUPTIONS[corruption]:
                config["dataset"]["corruption"] = CORRUPTIONS[corruption]
            (run / "config.yaml").write_text(yaml.safe_dump(config))
            # the fixed-radius probe: sharpness 1 + seed on clean data, 10 + seed corrupted
            sharp = pd.read_csv(run / "sharpness.csv")
            sharp["critic_rho0.05_sharpness"] = (1.0 if corruption is None else 10.0) + seed
            sharp.to_csv(run / "sharpness.csv", index=False)
    return root


def _iqm(values: list[float]) -> float:
    return float(trim_mean(values, 0.25))


def _p_improvement(x: list[float], y: list[float]) -> float:
    pairs = list(itertools.product(x, y))
    return sum((a > b) + 0.5 * (a == b) for a, b in pairs) / len(pairs)


def test_condition_words() -> None:
    assert condition_of(None) == CLEAN == condition_of({"fields": None})
    assert condition_of(OBS) == "random observations"
    assert condition_of(MIXED) == "random mixed"
    adversarial = {"mode": "adversarial", "fields": ["next_observations", "actions"]}
    assert condition_of(adversarial) == "adversarial actions+next observations"


def test_paper_scores_are_the_means_over_its_tasks() -> None:
    assert paper_score("random observations", "iql", sam=False) == pytest.approx(
        (21.01 + 24.74 + 58.42) / 3
    )
    assert paper_score("random mixed", "riql", sam=True) == pytest.approx(32.06)
    assert paper_score("adversarial observations", "iql", sam=True) == pytest.approx(36.03)
    assert paper_score(CLEAN, "iql", sam=False) is None


def test_a_task_the_paper_reports_is_compared_with_that_task_alone() -> None:
    obs = "random observations"
    assert paper_score(obs, "iql", sam=False, dataset="halfcheetah-medium") == 21.01
    assert paper_score(obs, "iql", sam=True, dataset="hopper-medium-replay") == 73.21
    assert paper_tasks(obs, "halfcheetah-medium") == "halfcheetah"
    assert paper_score(obs, "iql", sam=False, dataset="pendulum-replay") == pytest.approx(
        (21.01 + 24.74 + 58.42) / 3
    )
    assert paper_tasks(obs, "pendulum-replay") == "halfcheetah, walker2d, hopper"


def test_table_numbers_recomputed(tmp_path: Path) -> None:
    root = _write_sweep(tmp_path / "sw")
    tables = compute_sweep_tables(root, n_boot=N_BOOT)
    # the clean level uses clean Adam runs only: n = 4 of the 12 IQL/RIQL Adam runs
    levels = tables.baselines.set_index("algo.name")
    assert levels.loc["iql", "n"] == 4 and "riql" not in levels.index
    assert levels.loc["iql", "iqm"] == pytest.approx(_iqm(SCORES[("iql", None, "adam")]))

    cells = compute_corruption_table(tables, root, n_boot=N_BOOT).set_index(
        ["condition", "algo.name"]
    )
    assert list(cells.index) == [
        (CLEAN, "iql"),
        ("random observations", "iql"),
        ("random mixed", "riql"),
    ]
    for (algo, corruption, _), condition in (
        (("iql", None, ""), CLEAN),
        (("iql", "obs", ""), "random observations"),
        (("riql", "mixed", ""), "random mixed"),
    ):
        row = cells.loc[(condition, algo)]
        adam, sam = SCORES[(algo, corruption, "adam")], SCORES[(algo, corruption, "sam")]
        assert row["adam_n"] == row["sam_n"] == 4
        assert row["adam_iqm"] == pytest.approx(_iqm(adam))
        assert row["sam_iqm"] == pytest.approx(_iqm(sam))
        assert row["diff"] == pytest.approx(_iqm(sam) - _iqm(adam))
        assert row["prob_improvement"] == pytest.approx(_p_improvement(sam, adam))
        assert row["paired"]
        assert row["sam"] == "SAM rho 0.05 on critic"
        assert row["diff_ci_low"] <= row["diff"] <= row["diff_ci_high"]
        sharp = (1.0 if corruption is None else 10.0) + np.arange(4)
        assert row["adam_critic_sharpness"] == pytest.approx(_iqm(list(sharp)))
        assert row["probe_rho"] == pytest.approx(0.05)
    obs = cells.loc[("random observations", "iql")]
    assert obs["direction"] == "higher"  # every paired difference is +21
    assert obs["paper_direction"] == "higher" and obs["agreement"] == "agrees"
    assert not obs["claim"]  # the clean level is unknown: 10 evaluation episodes not recorded
    assert pd.isna(cells.loc[(CLEAN, "iql"), "paper_adam"])


def test_command_writes_table_and_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _write_sweep(tmp_path / "sw")
    code, out, err = run_cli(["corruption-table", str(root), "--n-boot", str(N_BOOT)], capsys)
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("wrote ")
    text = (root / "corruption_table.md").read_text()
    assert "arXiv 2511.17568" in text and "no claim: agrees (SAM higher)" in text
    assert "| random observations | IQL | 4 / 4 |" in text
    assert len(pd.read_csv(root / "corruption_table.csv")) == 3
    png = root / "plots" / "corruption_table.png"
    assert png.stat().st_size > 10_000 and png.with_suffix(".pdf").is_file()

    from samrl.results.corruption_plot import build_corruption_figure

    tables = compute_sweep_tables(root, n_boot=N_BOOT)
    figure = build_corruption_figure(compute_corruption_table(tables, root, n_boot=N_BOOT))
    assert len(figure.axes) == 2  # score, critic sharpness
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "IQL Adam",
        "IQL SAM rho 0.05 on critic",
        "RIQL Adam",
        "RIQL SAM rho 0.05 on critic",
    ]


def test_command_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    for where in (tmp_path / "nowhere", tmp_path / "empty"):
        code, _out, err = run_cli(["corruption-table", str(where)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and str(where) in err, err


def test_grid_labels_name_the_data_condition() -> None:
    """A corruption sweep's legend says "random observations", not fields=[...] mode=nan."""
    from samrl.results.labels import point_labels

    nan = float("nan")
    keys = ["algo.name", "dataset.corruption.fields", "dataset.corruption.mode"]
    points = [
        {"algo.name": "iql", "dataset.corruption.fields": nan, "dataset.corruption.mode": nan},
        {"algo.name": "iql", "dataset.corruption.fields": '["observations"]'},
        {"algo.name": "iql", "dataset.corruption.fields": json.dumps(MIXED["fields"])},
        {
            "algo.name": "iql",
            "dataset.corruption.fields": '["observations"]',
            "dataset.corruption.mode": "adversarial",
        },
    ]
    assert point_labels(points, keys) == [
        "clean",
        "random observations",
        "random mixed",
        "adversarial observations",
    ]
    # clean against one corruption: the condition still varies although one field value is set
    assert point_labels(points[:2], keys) == ["clean", "random observations"]


def test_facet_columns_are_the_data_conditions() -> None:
    """A corruption sweep's figures: a column per data condition, Adam and SAM as the lines,
    and no "rate=0.3" (a setting only corrupted points have) in the legend."""
    import pandas as pd

    from samrl.results.facets import facet_layout

    keys = ["algo.name", "optim.name", *(f"dataset.corruption.{k}" for k in ("fields", "rate"))]
    conditions = [{}, {"fields": '["observations"]', "rate": 0.3}, {**MIXED, "rate": 0.3}]
    rows = [
        {
            "algo.name": algo,
            "dataset.name": "pendulum-replay",
            "optim.name": optim,
            "optim.rho": 0.05,
            "optim.networks": '["critic"]',
            **{f"dataset.corruption.{k}": v for k, v in condition.items()},
        }
        for algo in ("iql", "riql")
        for condition in conditions
        for optim in ("adam", "sam")
    ]
    for row in rows:
        if isinstance(row.get("dataset.corruption.fields"), list):
            row["dataset.corruption.fields"] = json.dumps(row["dataset.corruption.fields"])
    (facet,) = facet_layout(pd.DataFrame(rows), keys)
    assert facet.columns == ["clean", "random observations", "random mixed"]
    assert facet.rows == ["IQL", "RIQL"]
    for panel in facet.panels.values():
        labels = [facet.styles[i].label for i in panel.points]
        assert labels == ["Adam", "SAM on critic rho=0.05"], labels
        assert [rows[i]["algo.name"] for i in panel.points] == [panel.row.lower()] * 2


def test_a_row_claims_only_where_adam_learns_on_its_own_data() -> None:
    from samrl.results.corruption_table import _baseline_learns_here

    learns = {"verdict": "learns", "behaviour_normalized": 46.4}
    replay = "pendulum-replay"
    assert _baseline_learns_here(learns, 73.7, replay)  # clean Adam: the level's own runs
    assert not _baseline_learns_here(learns, 45.9, replay)  # corrupted Adam below the level
    # the bar is behaviour + 5 (51.4 here), not the behaviour level itself
    assert not _baseline_learns_here(learns, 50.5, replay)
    assert _baseline_learns_here(learns, 51.5, replay)
    assert not _baseline_learns_here({**learns, "behaviour_normalized": 80.0}, 73.7, replay)
    assert not _baseline_learns_here({**learns, "verdict": "does not learn"}, 73.7, replay)
    assert not _baseline_learns_here(None, 73.7, replay)
    assert not _baseline_learns_here(learns, float("nan"), replay)


def test_tally_counts_claims_and_says_the_directions_of_the_rest() -> None:
    import pandas as pd

    from samrl.results.comparison import AGREES, DISAGREES, INDISTINGUISHABLE, tally, tally_text

    cells = pd.DataFrame(
        {
            "agreement": [AGREES, DISAGREES, DISAGREES, INDISTINGUISHABLE, None],
            "claim": [True, False, False, False, True],
        }
    )
    assert tally(cells) == {AGREES: 1, DISAGREES: 0, INDISTINGUISHABLE: 0}
    assert tally(cells, claims_only=False) == {AGREES: 1, DISAGREES: 2, INDISTINGUISHABLE: 1}
    text = tally_text(cells)
    assert "in the 1 compared rows that make a claim" in text
    assert f"all 4 compared rows: 1 {AGREES}, 2 {DISAGREES}, 1 {INDISTINGUISHABLE}" in text
    # every row a claim: the directions are not said twice
    assert "directions only" not in tally_text(cells.assign(claim=True))


def test_clean_cells_borrowed_from_another_sweep_are_the_ones_run_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The clean runs in a study, the corrupted ones in a corruption sweep: `--also` gives the
    table of the one sweep that holds both, byte for byte, and says where the clean cell came
    from; a clean run trained otherwise is refused in one line."""
    whole = _write_sweep(tmp_path / "whole")
    code, _out, err = run_cli(["corruption-table", str(whole), "--n-boot", str(N_BOOT)], capsys)
    assert code == 0, err
    study, corrupted = tmp_path / "study", tmp_path / "corrupted"
    for run in sorted(p for p in whole.iterdir() if (p / "config.yaml").is_file()):
        clean = "_None_" in run.name
        shutil.copytree(run, (study if clean else corrupted) / run.name)
    args = ["corruption-table", str(corrupted), "--also", str(study), "--n-boot", str(N_BOOT)]
    code, _out, err = run_cli(args, capsys)
    assert code == 0, err
    name = "corruption_table.csv"
    assert (corrupted / name).read_bytes() == (whole / name).read_bytes()
    notes = (corrupted / "corruption_table.md").read_text()
    assert f"- IQL on clean pendulum-medium: 8 runs from {study}" in notes

    config_file = study / "iql_None_adam_s0" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["train"]["n_steps"] += 1
    config_file.write_text(yaml.safe_dump(config))
    code, _out, err = run_cli(args, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "iql_None_adam_s0" in err and "train.n_steps" in err
