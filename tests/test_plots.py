"""Plots, report.md and the plot/report commands on hand-made run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_aggregate import write_run, write_sweep

from samrl.analysis.plot_cli import plot_cmd, report_cmd
from samrl.analysis.plots import (
    build_curves_figure,
    build_run_figure,
    build_scatter_figure,
    build_vs_rho_figure,
    mean_with_band,
    plot_run,
    plot_sweep,
)
from samrl.analysis.report import write_report
from samrl.errors import RunError, SamrlError
from samrl.results.aggregate import compute_sweep_tables

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


def test_sweep_figures_count_lines_and_axes(sweep: Path) -> None:
    tables = compute_sweep_tables(sweep, n_boot=N_BOOT)
    curves = build_curves_figure(sweep, tables, ["critic_loss", "return_mean"])
    assert len(curves.axes) == 2
    assert all(len(ax.get_lines()) == 3 for ax in curves.axes)  # one per rho
    assert all(len(ax.collections) == 3 for ax in curves.axes)  # one CI band per rho
    labels = [line.get_label() for line in curves.axes[0].get_lines()]
    assert labels == ["SAM rho=0 (n=3)", "SAM rho=0.05 (n=3)", "SAM rho=0.1 (n=3)"]
    # mean over seeds of the last return = mean of the final scores
    last_mean = curves.axes[1].get_lines()[1].get_ydata()[-1]
    assert last_mean == pytest.approx(np.mean(SCORES[0.05]))

    vs_rho = build_vs_rho_figure(tables.aggregate, tables.keys)
    assert [ax.get_title() for ax in vs_rho.axes] == [
        "Final normalized score\n(IQM, 95% CI)",
        "Critic sharpness (own training rho)\n(IQM, 95% CI)",
    ]
    assert all(ax.get_ylabel() and ax.get_xlabel() for ax in vs_rho.axes)
    x, _ = vs_rho.axes[0].get_lines()[0].get_data()
    assert list(x) == [0.0, 0.05, 0.1]

    scatter = build_scatter_figure(tables)
    assert scatter is not None and len(scatter.axes) == 1
    assert sum(len(c.get_offsets()) for c in scatter.axes[0].collections) == 9  # one per run


def test_plot_sweep_writes_files(sweep: Path) -> None:
    written = plot_sweep(sweep)
    assert [p.name for p in written] == [
        "curves.png",
        "score_vs_steps.png",
        "sharpness_vs_steps.png",
        "final_vs_rho.png",
        "sharpness_vs_score.png",
        "performance_profile.png",
        "prob_improvement.png",
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
    figure = build_vs_rho_figure(tables.aggregate, tables.keys)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert "Adam" in labels  # axhline
    assert len(figure.axes[0].containers) == 1  # one errorbar series: sam over rho


def test_one_series_per_other_grid_value(tmp_path: Path) -> None:
    root = tmp_path / "sw"
    for dataset in ("a", "b"):
        for rho in (0.0, 0.05):
            point = {"dataset.name": dataset, "optim.rho": rho}
            write_run(root / f"{dataset}_{rho}", rho=rho, seed=0, sweep_point=point)
    tables = compute_sweep_tables(root, n_boot=N_BOOT)
    figure = build_vs_rho_figure(tables.aggregate, tables.keys)
    assert [c.get_label() for c in figure.axes[0].containers] == ["a", "b"]


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
    assert "| point | n | final_normalized_score IQM [95% CI] | mean ± std |" in text
    assert "| rho=0.05 | 3 |" in text and "vs rho=0" in text
    assert "![curves](plots/curves.png)" in text
    assert "`optim.rho`: 0.0, 0.05, 0.1" in text
    assert "Seeds: 0, 1, 2" in text
    assert "d3rlpy 2.8.1" in text and "Runs: 9 (9 completed)" in text
    assert "## How to read this" in text and "interquartile mean" in text
    assert (sweep / "aggregate.csv").is_file() and (sweep / "plots" / "curves.png").is_file()
    assert "Example" in CliRunner().invoke(report_cmd, ["--help"]).output


def test_sweep_figures_without_warnings_and_one_colour_per_point(
    sweep: Path, recwarn: pytest.WarningsRecorder
) -> None:
    tables = compute_sweep_tables(sweep, n_boot=N_BOOT)
    written = plot_sweep(sweep, tables=tables)
    assert not [w for w in recwarn if "samrl" in str(w.filename) or "matplotlib" in str(w.filename)]
    curves = build_curves_figure(sweep, tables, ["critic_loss", "return_mean"])
    scatter = build_scatter_figure(tables)
    assert scatter is not None and len(written) == 7

    def colours(pairs: list[tuple[str, object]]) -> dict[str, tuple[float, ...]]:
        from matplotlib.colors import to_rgba

        return {label.split(" (n=")[0]: to_rgba(c) for label, c in pairs}

    by_curve = [
        colours([(line.get_label(), line.get_color()) for line in ax.get_lines()])
        for ax in curves.axes
    ]
    by_scatter = colours(
        [(c.get_label(), tuple(c.get_facecolor()[0])) for c in scatter.axes[0].collections]
    )
    assert by_curve[0] == by_curve[1] == by_scatter
    assert len(set(by_scatter.values())) == len(by_scatter) == 3


def test_vs_rho_for_a_single_run_directory_is_not_an_empty_axis(tmp_path: Path) -> None:
    write_run(tmp_path / "one" / "run", rho=0.0, seed=0, optim="adam", sweep_point={})
    tables = compute_sweep_tables(tmp_path / "one", n_boot=N_BOOT)
    figure = build_vs_rho_figure(tables.aggregate, tables.keys)
    for ax in figure.axes:
        assert ax.containers, ax.get_title()  # an errorbar point, not just a baseline line
        assert [t.get_text() for t in ax.get_xticklabels()] == ["Adam"]


def test_dqn_loss_gets_its_panel() -> None:
    from samrl.analysis.plots import default_metrics, metric_title

    chosen = default_metrics(["loss", "q_sharpness", "q_grad_norm", "return_mean"])
    assert chosen == ["loss", "q_sharpness", "return_mean"]
    assert metric_title("loss") == "Training loss"
    assert metric_title("q_sharpness") == "Q-function sharpness (own training rho)"
    assert metric_title("critic_rho0.05_sharpness") == "Critic sharpness (fixed rho=0.05)"
