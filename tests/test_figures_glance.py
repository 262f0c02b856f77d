"""Every figure `samrl plot` makes for a sweep reads at a glance: at most 6 legend entries per
legend and 6 lines per panel, on the two layouts the studies use (matplotlib objects
inspected, on hand-made sweeps)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers.sweeps import Point, write_point_sweep
from matplotlib.figure import Figure

from samrl.results import plots
from samrl.results.aggregate import compute_sweep_tables
from samrl.results.seed_reference import SEED_RETURNS
from samrl.results.seed_table import choice_networks
from samrl.results.sweep_figures import plot_sweep

MAX = 6


def network_study(root: Path) -> Path:
    """SAM on actor / critic / both x rho 0.01 / 0.05 / 0.1, plus Adam; 2 algorithms x 2
    datasets x 2 seeds, with the fixed-radius probe and a post-hoc worst case."""
    rng = np.random.default_rng(0)
    points = []
    for algo in ("td3_plus_bc", "cql"):
        for dataset in ("pendulum-medium", "pendulum-replay"):
            for nets in (None, ["actor"], ["critic"], ["critic", "actor"]):
                for rho in (0.01, 0.05, 0.1) if nets else (0.05,):
                    probe = {
                        f"{n}_rho0.05_sharpness": list(rng.uniform(size=2))
                        for n in ("actor", "critic")
                    }
                    points.append(
                        Point(
                            algo,
                            list(rng.uniform(40, 90, size=2)),
                            networks=nets,
                            rho=rho,
                            dataset=dataset,
                            sharpness=probe,
                            posthoc={("critic", 0.05): list(rng.uniform(size=2))},
                        )
                    )
    return write_point_sweep(root, points)


def seed_table_sweep(root: Path) -> Path:
    """Eight algorithms x their optimizer choices at one rho, one dataset, 2 seeds."""
    rng = np.random.default_rng(1)
    points = []
    for algo in SEED_RETURNS:
        nets = choice_networks(algo)
        choices = [None, *([n] for n in nets), list(nets)]
        for choice in choices:
            points.append(Point(algo, list(rng.uniform(20, 90, size=2)), networks=choice))
    return write_point_sweep(root, points)


def figures_of(sweep: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    made: dict[str, Figure] = {}

    def keep(figure: Figure, out: Path) -> Path:
        made[Path(out).name] = figure
        return Path(out)

    monkeypatch.setattr(plots, "save", keep)
    plot_sweep(sweep, tables=compute_sweep_tables(sweep, n_boot=50))
    return made


def title_fits(figure: Figure) -> bool:
    """Whether the figure's title, drawn, lies within the figure's edges (not cut off)."""
    title = figure._suptitle  # matplotlib keeps no public handle on it
    if title is None:
        return True
    figure.canvas.draw()
    box, edges = title.get_window_extent(), figure.bbox
    return bool(box.x0 >= edges.x0 and box.x1 <= edges.x1)


def test_a_long_title_is_wrapped_to_a_narrow_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two datasets, Adam only: two panels, narrower than the performance profile's title."""
    points = [Point("iql", [20.0, 24.0], dataset=d) for d in ("pendulum-replay", "pendulum-medium")]
    made = figures_of(write_point_sweep(tmp_path / "narrow", points), monkeypatch)
    profile = made["performance_profile.png"]
    assert profile.get_figwidth() < 10 and "\n" in profile.get_suptitle()
    for name, figure in made.items():
        assert title_fits(figure), (name, figure.get_suptitle())


@pytest.mark.parametrize("layout", [network_study, seed_table_sweep])
def test_every_sweep_figure_reads_at_a_glance(
    layout: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = layout(tmp_path / "sweep")  # type: ignore[operator]
    made = figures_of(sweep, monkeypatch)
    names = set(made)
    assert {"sharpness_vs_score.png"} <= names and any(n.startswith("final_vs_rho") for n in names)
    assert any(n.startswith("score_vs_steps") for n in names)
    for name, figure in made.items():
        legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]
        for legend in legends:
            assert len(legend.get_texts()) <= MAX, (
                name,
                [t.get_text() for t in legend.get_texts()],
            )
        for ax in figure.axes:
            assert len(ax.get_lines()) <= MAX, (name, ax.get_title(), len(ax.get_lines()))
        assert title_fits(figure), (name, figure.get_suptitle())
        # the facet grid: every panel names its algorithm; each algorithm has its panels
        algos = {re.split(" · |\n", ax.get_title())[0] for ax in figure.axes}
        assert len(algos) == (2 if layout is network_study else len(SEED_RETURNS)), name


def test_network_study_columns_and_colours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = figures_of(network_study(tmp_path / "sweep"), monkeypatch)
    # 3 radii + Adam per dataset: two datasets would be 8 lines, so one figure per dataset
    assert {"score_vs_steps_pendulum-medium.png", "score_vs_steps_pendulum-replay.png"} <= set(made)
    figure = made["score_vs_steps_pendulum-medium.png"]
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:3] == [
        "TD3+BC · SAM on actor",
        "TD3+BC · SAM on critic",
        "TD3+BC · SAM on actor+critic",
    ]
    for ax in figure.axes:
        colours = {line.get_label(): line.get_color() for line in ax.get_lines()}
        assert colours["Adam"] == "black" and len(colours) == 4


def test_adam_only_pilot_final_scores_in_one_panel_per_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    algos = ["td3_plus_bc", "cql", "ddpg", "td3", "sac", "awac", "iql", "bcq"]
    points = [Point(a, [50.0 + k, 60.0 + k]) for k, a in enumerate(algos)]
    points.append(Point("cql", [70.0, 71.0], dataset="pendulum-medium"))
    made = figures_of(write_point_sweep(tmp_path / "pilot", points), monkeypatch)
    final = made["final_vs_rho.png"]
    assert [ax.get_title() for ax in final.axes] == ["pendulum-replay", "pendulum-medium"]
    replay = final.axes[0]
    labels = [t.get_text() for t in replay.get_xticklabels()]
    assert labels == ["TD3+BC", "CQL", "DDPG", "TD3", "SAC", "AWAC", "IQL", "BCQ"]
    assert len(replay.get_lines()) <= MAX
    # the points are the IQMs (two seeds: the mean), algorithm by algorithm
    from matplotlib.collections import PathCollection

    centres = [c.get_offsets()[0][1] for c in replay.collections if isinstance(c, PathCollection)]
    assert centres == pytest.approx([55.0 + k for k in range(len(algos))])


def test_each_improvement_panel_keeps_its_own_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One algorithm on two datasets, SAM on two networks finished on the first and none on the
    second (a study in progress): the first panel still shows both points and names them; a
    y axis shared along the row once let the empty panel erase them."""
    points = [
        Point("td3_plus_bc", [25.0, 26.0, 25.5]),
        Point("td3_plus_bc", [20.0, 21.0, 20.5], networks=["critic"]),
        Point("td3_plus_bc", [25.2, 26.1, 25.0], networks=["actor"]),
        Point("td3_plus_bc", [21.0, 22.0, 21.5], dataset="pendulum-medium"),
    ]
    made = figures_of(write_point_sweep(tmp_path / "study", points), monkeypatch)
    figure = made["prob_improvement.png"]
    panel = next(ax for ax in figure.axes if ax.get_title().endswith("pendulum-replay"))
    labels = [t.get_text() for t in panel.get_yticklabels()]
    assert len(labels) == 2 and all(labels), labels
    low, high = panel.get_ylim()
    ys = [line.get_ydata()[0] for line in panel.get_lines() if len(line.get_ydata()) == 1]
    assert sorted(ys) == [0, 1] and all(low < y < high for y in ys)
