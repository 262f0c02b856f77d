"""Plots, report.md and the plot/report commands on hand-made run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers.runs import write_run, write_sweep

from samrl.errors import RunError, SamrlError
from samrl.results.aggregate import compute_sweep_tables
from samrl.results.facets import facet_layout
from samrl.results.plot_cli import plot_cmd, report_cmd
from samrl.results.plots import (
    build_run_figure,
    mean_with_band,
    plot_run,
)
from samrl.results.report import write_report
from samrl.results.sweep_figures import (
    build_final_figure,
    build_metric_figure,
    build_scatter_figure,
    plot_sweep,
)

N_BOOT = 100
SCORES = {0.0: [1.0, 2.0, 3.0], 0.05: [2.0, 3.0, 5.0], 0.1: [0.5, 4.0, 6.0]}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return write_sweep(tmp_path / "sweep", SCORES)


def test_run_figure_one_axes_and_line_per_metric(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", rho=0.05, seed=0)
    figure = build_run_figure(run, ["critic_loss", "critic_sharpness", "return_mean"])
    assert len(figure.axes) == 3
    assert [len(ax.get_lines()) for ax in figure.axes] == [1, 1, 1]
    x, y = figure.axes[1].get_lines()[0].get_data()
    assert list(x) == [10, 20, 30, 40] and list(y) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    # defaults: loss terms, sharpness, return and normalized score
    assert len(build_run_figure(run).axes) == 5
    out = plot_run(run, ["critic_loss"], tmp_path / "one.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_metric_suggests(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", rho=0.05, seed=0)
    with pytest.raises(SamrlError, match="did you mean 'critic_sharpness'"):
        build_run_figure(run, ["critic_sharpnes"])


def _facet(tables: object) -> object:
    (facet,) = facet_layout(tables.aggregate, tables.keys)  # type: ignore[attr-defined]
    return facet


def test_sweep_figures_count_lines_and_axes(sweep: Path) -> None:
    tables = compute_sweep_tables(sweep, n_boot=N_BOOT)
    facet = _facet(tables)
    curves = build_metric_figure(sweep, tables, "return_mean", "eval.csv", facet)
    (ax,) = curves.axes  # one algorithm, one dataset: one panel
    assert len(ax.get_lines()) == 3 and len(ax.collections) == 3  # a line and band per rho
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["SAM rho=0", "SAM rho=0.05", "SAM rho=0.1"]
    # mean over seeds of the last return = mean of the final scores
    assert ax.get_lines()[1].get_ydata()[-1] == pytest.approx(np.mean(SCORES[0.05]))

    final = build_final_figure(tables, "final_normalized_score", facet)
    (ax,) = final.axes
    assert ax.get_xlabel() == "rho (SAM radius)" and ax.get_ylabel()
    x, _ = ax.get_lines()[0].get_data()
    assert list(x) == [0.0, 0.05, 0.1]
    assert "Final normalized score" in final.get_suptitle()

    scatter = build_scatter_figure(tables, ["critic_sharpness_last10"], "final_normalized_score")
    assert scatter is not None and len(scatter.axes) == 1
    assert sum(len(c.get_offsets()) for c in scatter.axes[0].collections) == 9  # one per run


def test_plot_sweep_writes_files(sweep: Path) -> None:
    written = plot_sweep(sweep)
    assert [p.name for p in written] == [
        "score_vs_steps.png",
        "curves_critic_loss.png",
        "curves_actor_loss.png",
        "curves_critic_sharpness.png",
        "curves_return_mean.png",
        "final_vs_rho.png",
        "final_vs_rho_critic_sharpness.png",
        "performance_profile.png",
        "prob_improvement.png",
        "sharpness_vs_score.png",
    ]
    for png in written:
        assert png.parent == sweep / "plots" and png.stat().st_size > 10_000, png
        assert png.with_suffix(".pdf").stat().st_size > 5_000, png


def test_adam_point_is_a_horizontal_line(tmp_path: Path) -> None:
    root = tmp_path / "sw"
    for seed in range(2):
        write_run(
            root / f"adam_s{seed}",
            rho=0.0,
            seed=seed,
            optim="adam",
            sweep_point={"optim.name": "adam", "optim.rho": 0.0},
        )
        for rho in (0.05, 0.1):
            write_run(
                root / f"sam{rho}_s{seed}",
                rho=rho,
                seed=seed,
                sweep_point={"optim.name": "sam", "optim.rho": rho},
            )
    tables = compute_sweep_tables(root, n_boot=N_BOOT)
    figure = build_final_figure(tables, "final_normalized_score", _facet(tables))
    (ax,) = figure.axes
    adam = [line for line in ax.get_lines() if line.get_label() == "Adam"]
    assert len(adam) == 1 and adam[0].get_color() == "black"  # axhline
    assert len(ax.containers) == 1  # one errorbar series: sam over rho


def test_one_column_per_dataset(tmp_path: Path) -> None:
    root = tmp_path / "sw"
    for dataset in ("a", "b"):
        for rho in (0.0, 0.05):
            point = {"dataset.name": dataset, "optim.rho": rho}
            write_run(root / f"{dataset}_{rho}", rho=rho, seed=0, sweep_point=point)
    tables = compute_sweep_tables(root, n_boot=N_BOOT)
    figure = build_final_figure(tables, "final_normalized_score", _facet(tables))
    assert [ax.get_title() for ax in figure.axes] == ["a", "b"]
    assert all(len(ax.containers) == 1 for ax in figure.axes)


def test_mean_with_band() -> None:
    matrix = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])  # 2 runs x 3 steps
    mean, low, high = mean_with_band(matrix, n_boot=200)
    assert mean.tolist() == [2.0, 3.0, 5.0]
    assert np.all(low <= mean) and np.all(mean <= high)
    assert low[0] == pytest.approx(1.0) and high[0] == pytest.approx(3.0)


def test_report_on_unfinished_sweep(tmp_path: Path) -> None:
    statuses = {"cql_pendulum-medium_sam-rho0.05_s1": "failed"}
    sweep = write_sweep(tmp_path / "sw", {0.0: [1.0, 2.0], 0.05: [3.0, 4.0]}, statuses)
    text = write_report(sweep, n_boot=N_BOOT).read_text()
    assert "## Runs that did not complete" in text and "| failed |" in text and "boom" in text
    # nothing written yet at all: the report still says what is planned
    empty = tmp_path / "planned"
    empty.mkdir()
    spec = {
        "name": "planned",
        "grid": {"optim.rho": [0.0]},
        "seeds": [0],
        "runs": [{"run_id": "a", "dir": "runs/a", "point": {"optim.rho": 0.0}, "seed": 0}],
    }
    (empty / "sweep.json").write_text(json.dumps(spec))
    assert "1 pending" in write_report(empty, n_boot=N_BOOT).read_text()


def test_plot_command_run_and_sweep(tmp_path: Path, sweep: Path) -> None:
    run = next((sweep / "runs").iterdir())
    out = tmp_path / "x.png"
    result = CliRunner().invoke(plot_cmd, [str(run), "--metric", "critic_loss", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and result.output.strip().splitlines()[-1] == f"wrote {out}"
    folder = tmp_path / "figures"
    result = CliRunner().invoke(
        plot_cmd, [str(sweep), "--metric", "critic_loss", "--out", str(folder)]
    )
    assert result.exit_code == 0, result.output
    assert str(folder) in result.output.strip().splitlines()[-1]
    assert (folder / "final_vs_rho.png").is_file()


def test_plot_command_user_errors(tmp_path: Path, sweep: Path) -> None:
    runner = CliRunner()
    assert isinstance(runner.invoke(plot_cmd, [str(tmp_path / "nope")]).exception, SamrlError)
    (tmp_path / "empty").mkdir()
    assert isinstance(runner.invoke(plot_cmd, [str(tmp_path / "empty")]).exception, RunError)
    bad_metric = runner.invoke(plot_cmd, [str(sweep), "--metric", "retrun_mean"])
    assert isinstance(bad_metric.exception, SamrlError)
    assert "did you mean 'return_mean'" in str(bad_metric.exception)
    assert "Example" in runner.invoke(plot_cmd, ["--help"]).output


def test_report_command_writes_aggregate_table(sweep: Path) -> None:
    result = CliRunner().invoke(report_cmd, [str(sweep), "--n-boot", "50"])
    assert result.exit_code == 0, result.output
    report = sweep / "report.md"
    assert result.output.strip().splitlines()[-1].startswith(f"wrote {report}")
    text = report.read_text()
    assert "| point | n | headline_normalized_score IQM [95% CI] | mean ± std |" in text
    assert "| rho=0.05 | 3 |" in text and "vs rho=0" in text
    assert "![score_vs_steps](plots/score_vs_steps.png)" in text
    assert "`optim.rho`: 0.0, 0.05, 0.1" in text
    assert "Seeds: 0, 1, 2" in text
    assert "d3rlpy 2.8.1" in text and "Runs: 9 (9 completed)" in text
    assert "## How to read this" in text and "interquartile mean" in text
    assert (sweep / "aggregate.csv").is_file()
    assert (sweep / "plots" / "score_vs_steps.png").is_file()
    assert "Example" in CliRunner().invoke(report_cmd, ["--help"]).output


def test_sweep_figures_without_warnings_and_one_colour_per_point(
    sweep: Path, recwarn: pytest.WarningsRecorder
) -> None:
    tables = compute_sweep_tables(sweep, n_boot=N_BOOT)
    written = plot_sweep(sweep, tables=tables)
    assert not [w for w in recwarn if "samrl" in str(w.filename) or "matplotlib" in str(w.filename)]
    assert len(written) == 10
    facet = _facet(tables)
    from matplotlib.colors import to_rgba

    curves = build_metric_figure(sweep, tables, "critic_loss", "loss.csv", facet)
    final = build_final_figure(tables, "final_normalized_score", facet)
    by_curve = {line.get_label(): to_rgba(line.get_color()) for line in curves.axes[0].get_lines()}
    by_final = {
        c.get_label(): to_rgba(tuple(c.get_facecolor()[0]))
        for c in final.axes[0].collections
        if c.get_label() in by_curve
    }
    assert by_curve == by_final and len(set(by_curve.values())) == 3


def test_final_figure_for_a_single_run_directory_is_not_an_empty_axis(tmp_path: Path) -> None:
    write_run(tmp_path / "one" / "run", rho=0.0, seed=0, optim="adam", sweep_point={})
    tables = compute_sweep_tables(tmp_path / "one", n_boot=N_BOOT)
    figure = build_final_figure(tables, "final_normalized_score", _facet(tables))
    for ax in figure.axes:
        assert ax.containers and ax.collections, ax.get_title()  # a point with its CI
        # one point per panel: the algorithm along x (the compact final figure)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["CQL"]


def test_dqn_loss_gets_its_panel() -> None:
    from samrl.results.plots import default_metrics, metric_title

    chosen = default_metrics(["loss", "q_sharpness", "q_grad_norm", "return_mean"])
    assert chosen == ["loss", "q_sharpness", "return_mean"]
    assert metric_title("loss") == "Training loss"
    assert metric_title("q_sharpness") == "Q-function sharpness (own training rho)"
    assert metric_title("critic_rho0.05_sharpness") == "Critic sharpness (fixed rho=0.05)"


def test_a_loss_only_some_algorithms_log_gets_only_their_rows(tmp_path: Path) -> None:
    """BEAR's MMD loss in a sweep of many algorithms: one row, not a column of empty panels."""
    import yaml

    root = tmp_path / "sw"
    for algo in ("cql", "bear"):
        for seed in range(2):
            point = {"algo.name": algo, "optim.rho": 0.0}
            run = write_run(root / f"{algo}_s{seed}", rho=0.0, seed=seed, sweep_point=point)
            config = yaml.safe_load((run / "config.yaml").read_text())
            config["algo"]["name"] = algo
            (run / "config.yaml").write_text(yaml.safe_dump(config))
            if algo == "bear":
                loss = pd.read_csv(run / "loss.csv").assign(mmd_loss=0.5)
                loss.to_csv(run / "loss.csv", index=False)
    tables = compute_sweep_tables(root, n_boot=N_BOOT)
    facet = _facet(tables)
    assert len(facet.rows) == 2
    mmd = build_metric_figure(root, tables, "mmd_loss", "loss.csv", facet)
    assert [ax.get_title() for ax in mmd.axes] == ["BEAR"] and mmd.axes[0].get_lines()
    critic = build_metric_figure(root, tables, "critic_loss", "loss.csv", facet)
    assert sorted(ax.get_title() for ax in critic.axes) == ["BEAR", "CQL"]


def test_save_is_atomic_and_gives_the_same_bytes(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    from samrl.results.plots import save

    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    first = save(figure, tmp_path / "a.png")
    pdf = first.with_suffix(".pdf")
    before = (first.read_bytes(), pdf.read_bytes())
    assert before[0].startswith(b"\x89PNG") and before[1].startswith(b"%PDF")
    save(figure, tmp_path / "a.png")
    # no creation date in the PDF: drawing the same figure again gives the same file
    assert (first.read_bytes(), pdf.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png"]  # no temp file
    save(figure, tmp_path / "b.png", pdf=False)
    assert not (tmp_path / "b.pdf").exists()
