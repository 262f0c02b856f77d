"""`samrl seed-table` and samrl.results.seed_table on a hand-made sweep (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import run_cli
from helpers.sweeps import Point, write_point_sweep
from scipy import stats as scipy_stats

from samrl.cli.data import data_group
from samrl.results.aggregate import compute_sweep_tables
from samrl.results.cli import seed_table_cmd
from samrl.results.seed_reference import SEED_RETURNS
from samrl.results.seed_table import choice_label, choice_order, compute_seed_table
from samrl.results.seed_table_plot import build_seed_table_figure

N_BOOT = 300
ADAM_TD3 = [80.0, 82.0, 84.0, 86.0, 88.0]
# seed s adds the same offset on every choice: paired differences are exact
SEED_TD3 = {
    None: ADAM_TD3,
    ("critic",): [s - 30.0 for s in ADAM_TD3],  # lower, clearly: seed also lower -> agrees
    ("actor",): [s + 10.0 for s in ADAM_TD3],  # higher; seed lower (-854 vs -638): disagrees
    ("critic", "actor"): [81.0, 80.0, 85.0, 87.0, 86.0],  # mixed signs: indistinguishable
}


@pytest.fixture
def sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path / "cache"))
    made = CliRunner().invoke(data_group, ["make", "pendulum-replay", "--size", "600"])
    assert made.exit_code == 0, made.output
    points = [Point("td3", scores, networks=nets) for nets, scores in SEED_TD3.items()]
    # DDPG does not learn (Adam IQM < 50): its SAM differences are no claim
    points += [
        Point("ddpg", [10.0, 11.0, 12.0, 13.0, 14.0]),
        Point("ddpg", [40.0, 41.0, 42.0, 43.0, 44.0], networks=["critic"]),
    ]
    points += [
        Point("bcq", ADAM_TD3),
        Point("bcq", [s + 5.0 for s in ADAM_TD3], networks=["imitator"]),
        Point("bcq", [s - 5.0 for s in ADAM_TD3], networks=["critic"]),
    ]
    return write_point_sweep(tmp_path / "seed-table", points)


def test_choice_labels() -> None:
    assert choice_label("td3", frozenset({"actor"})) == "SAM/Adam"
    assert choice_label("td3", frozenset({"critic"})) == "Adam/SAM"
    assert choice_label("bcq", frozenset({"imitator"})) == "Adam/Adam/SAM"
    assert choice_order("td3") == ["Adam/Adam", "Adam/SAM", "SAM/Adam", "SAM/SAM"]
    order = choice_order("bear")
    assert order[0] == "Adam/Adam/Adam" and order[-1] == "SAM/SAM/SAM"
    assert set(order[1:4]) == {"Adam/Adam/SAM", "Adam/SAM/Adam", "SAM/Adam/Adam"}
    # every choice of the seed's numbers is a label samrl makes
    for algo, cells in SEED_RETURNS.items():
        assert set(cells) <= set(choice_order(algo)), algo


def test_cells_by_hand(sweep: Path) -> None:
    tables = compute_sweep_tables(sweep, n_boot=N_BOOT)
    cells = compute_seed_table(tables, n_boot=N_BOOT).set_index(["algo.name", "choice"])
    # aggregate.csv: Adam is the baseline of SAM on any network set (optim.networks varies)
    sam = tables.aggregate[tables.aggregate["optim.name"] == "sam"]
    assert sam["prob_improvement"].notna().all()
    assert set(sam["baseline"]) == set(
        tables.aggregate.loc[tables.aggregate["optim.name"] == "adam", "label"]
    )
    assert list(dict.fromkeys(cells.index.get_level_values(0))) == ["ddpg", "td3", "bcq"]
    adam = scipy_stats.trim_mean(ADAM_TD3, 0.25)
    for nets, scores in SEED_TD3.items():
        cell = cells.loc[("td3", choice_label("td3", frozenset(nets or ())))]
        assert cell["n"] == 5
        assert cell["iqm"] == pytest.approx(scipy_stats.trim_mean(scores, 0.25))
        assert cell["ci_low"] <= cell["iqm"] <= cell["ci_high"]
        if nets is None:
            assert pd.isna(cell["diff"]) and pd.isna(cell["agreement"])
            continue
        assert cell["diff"] == pytest.approx(cell["iqm"] - adam)
        assert cell["diff_ci_low"] <= cell["diff"] <= cell["diff_ci_high"]
        assert bool(cell["paired"]) and bool(cell["claim"])
        assert 0.0 <= cell["prob_improvement"] <= 1.0

    critic = cells.loc[("td3", "Adam/SAM")]
    # paired: every seed shifts by exactly -30, so the CI is one point
    assert critic["diff_ci_low"] == pytest.approx(-30) == critic["diff_ci_high"]
    assert critic["prob_improvement"] == pytest.approx(0.0)
    assert critic["seed_return"] == -1257 and critic["seed_diff"] == -1257 - (-638)
    assert (critic["direction"], critic["seed_direction"], critic["agreement"]) == (
        "lower",
        "lower",
        "agrees",
    )
    actor = cells.loc[("td3", "SAM/Adam")]
    assert (actor["direction"], actor["agreement"]) == ("higher", "disagrees")
    both = cells.loc[("td3", "SAM/SAM")]
    assert both["diff_ci_low"] < 0 < both["diff_ci_high"]
    assert (both["direction"], both["agreement"]) == ("none", "indistinguishable")

    ddpg = cells.loc[("ddpg", "Adam/SAM")]
    assert ddpg["direction"] == "higher" and ddpg["agreement"] == "agrees"  # -888 > -1339
    assert not ddpg["claim"] and ddpg["adam_level"] == "does not learn"
    # BCQ: the seed reported all-Adam and Adam/Adam/SAM only; SAM on the critic stays blank
    assert cells.loc[("bcq", "Adam/Adam/SAM"), "agreement"] == "agrees"
    assert pd.isna(cells.loc[("bcq", "Adam/SAM/Adam"), "seed_return"])
    assert pd.isna(cells.loc[("bcq", "Adam/SAM/Adam"), "agreement"])


def test_command_writes_tables_and_figure(sweep: Path) -> None:
    result = CliRunner().invoke(seed_table_cmd, [str(sweep), "--n-boot", str(N_BOOT)])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("wrote ") and str(sweep / "seed_table.md") in last
    # TD3: one of each; BCQ imitator agrees; DDPG agrees too but makes no claim
    assert "2 agrees, 1 disagrees, 1 indistinguishable" in last
    for name in ("seed_table.csv", "seed_table.md", "seed_table.tex", "plots/seed_table.png"):
        assert (sweep / name).is_file(), name
    assert (sweep / "plots" / "seed_table.pdf").is_file()
    text = (sweep / "seed_table.md").read_text()
    assert "DDPG on pendulum-replay: does not learn" in text and "no claim" in text
    assert "no claim: agrees (SAM higher)" in text
    assert "TD3 on pendulum-replay: learns" in text
    frame = pd.read_csv(sweep / "seed_table.csv")
    assert len(frame) == 4 + 4 + 3  # DDPG: SAM/Adam and SAM/SAM are rows of the seed's, not run
    not_run = frame[frame["agreement"] == "not run"]
    assert list(not_run["choice"]) == ["SAM/Adam", "SAM/SAM"] and (not_run["n"] == 0).all()
    assert list(not_run["seed_return"]) == [-1331, -1037]
    assert "\\begin{tabular}" in (sweep / "seed_table.tex").read_text()


def test_also_fills_missing_rows_from_another_sweep_at_the_seeds_rho(sweep: Path) -> None:
    # A study-like sweep: IQL at rho 0.01 and 0.05 plus Adam, and TD3 (which the seed table
    # already has, so it must not be taken twice).
    iql_adam = [70.0, 72.0, 74.0, 76.0, 78.0]
    study = write_point_sweep(
        sweep.parent / "study",
        [
            Point("iql", iql_adam),
            Point("iql", [s - 20.0 for s in iql_adam], networks=["critic"]),
            Point("iql", [s + 50.0 for s in iql_adam], networks=["critic"], rho=0.01),
            Point("td3", [0.0] * 5),
        ],
    )
    args = [str(sweep), "--also", str(study), "--n-boot", str(N_BOOT)]
    result = CliRunner().invoke(seed_table_cmd, args)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(sweep / "seed_table.csv")
    iql = frame[frame["algo.name"] == "iql"].set_index("choice")
    # rho 0.01 stays out; the seed's other IQL cells are rows "not run"
    assert iql.loc["Adam/SAM", "n"] == 5 and "rho" not in " ".join(iql.index)
    assert iql.loc["Adam/SAM", "diff"] == pytest.approx(-20.0)
    assert iql.loc["Adam/Adam", "adam_level"] == "learns"
    td3 = frame[(frame["algo.name"] == "td3") & (frame["choice"] == "Adam/Adam")]
    assert td3["iqm"].iloc[0] == pytest.approx(scipy_stats.trim_mean(ADAM_TD3, 0.25))
    text = (sweep / "seed_table.md").read_text()
    assert f"IQL on pendulum-replay: 10 runs from {study}" in text
    assert "TD3 on pendulum-replay" not in text.split("## Adam levels")[0]
    # the seed table's own summary stays its own
    assert set(pd.read_csv(sweep / "summary.csv")["algo.name"]) == {"td3", "ddpg", "bcq"}


def test_figure_marks_cells_whose_ci_excludes_zero(sweep: Path) -> None:
    tables = compute_sweep_tables(sweep, n_boot=N_BOOT)
    cells = compute_seed_table(tables, n_boot=N_BOOT)
    figure = build_seed_table_figure(cells)
    assert len(figure.axes) == 2  # actor/critic algorithms, then BCQ's three networks
    top = figure.axes[0]
    filled = [c for c in top.collections if c.get_offsets().shape[0] and _filled(c)]
    # TD3 Adam/SAM and SAM/Adam exclude 0; DDPG's Adam/SAM too (greyed, no claim)
    assert sum(c.get_offsets().shape[0] for c in filled) == 3
    for ax in figure.axes:
        assert len(ax.get_legend().get_texts()) <= 6 and len(ax.get_lines()) <= 6


def _filled(collection: object) -> bool:
    faces = collection.get_facecolor()  # type: ignore[attr-defined]
    return bool(len(faces)) and not np.allclose(faces[0][:3], 1.0)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such directory"),
        (lambda p: p.mkdir(), "not a sweep or run directory"),
        (
            lambda p: write_point_sweep(p, [Point("td3", [1.0], statuses={0: "running"})]),
            "no completed run with a headline normalized score",
        ),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, setup: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nothing"
    setup(path)  # type: ignore[operator]
    code, out, err = run_cli(["seed-table", str(path)], capsys)
    assert code == 2 and not out
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_only_the_seed_experiments_data_are_compared_with_it(tmp_path: Path) -> None:
    """TD3 on pendulum-medium: the seed ran on pendulum-replay only, so no seed return, no
    agreement and no 'not run' row for a choice the seed reported on its own data."""
    points = [
        Point("td3", ADAM_TD3, dataset="pendulum-medium"),
        Point("td3", [s - 30.0 for s in ADAM_TD3], networks=["critic"], dataset="pendulum-medium"),
    ]
    sweep = write_point_sweep(tmp_path / "other-data", points)
    cells = compute_seed_table(compute_sweep_tables(sweep, n_boot=N_BOOT), n_boot=N_BOOT)
    assert list(cells["choice"]) == ["Adam/Adam", "Adam/SAM"]  # no "not run" SAM/SAM row
    assert cells["seed_return"].isna().all() and cells["agreement"].isna().all()
    assert cells.loc[cells["choice"] == "Adam/SAM", "diff"].iloc[0] == pytest.approx(-30)
