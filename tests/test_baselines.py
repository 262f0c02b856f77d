"""The Adam baseline level (samrl.results.baselines) on hand-made sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner
from helpers.sweeps import Point, write_point_sweep
from scipy import stats as scipy_stats

from samrl.cli.data import data_group
from samrl.data.references import CLASSIC_REFERENCES
from samrl.results.aggregate import compute_sweep_tables
from samrl.results.baselines import LEARNS, NOT_LEARNING, UNKNOWN
from samrl.results.cli import summarize_cmd

N_BOOT = 200


@pytest.fixture
def behaviours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """pendulum-replay and pendulum-expert (600 steps, seed 0) cached; their behaviour
    normalized returns, read from the files' metadata with h5py and normalized by hand."""
    monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path / "cache"))
    low, high = CLASSIC_REFERENCES["pendulum"]
    out = {}
    for name in ("pendulum-replay", "pendulum-expert"):
        made = CliRunner().invoke(data_group, ["make", name, "--size", "600"])
        assert made.exit_code == 0, made.output
        with h5py.File(tmp_path / "cache" / f"{name}_n600_s0_g1.hdf5", "r") as f:
            mean = json.loads(f["metadata"].attrs["samrl_json"])["behaviour_return_mean"]
        out[name] = 100 * (mean - low) / (high - low)
    return out


def test_levels_by_hand(tmp_path: Path, behaviours: dict[str, float]) -> None:
    behaviour = behaviours["pendulum-replay"]
    learning = [60.0, 70.0, 80.0, 90.0, 100.0]
    above_behaviour = max(behaviour + 5.0, 55.0)
    sweep = write_point_sweep(
        tmp_path / "sweep",
        [
            Point("td3", learning),
            Point("ddpg", [10.0, 20.0, 30.0, 40.0, 45.0]),
            # IQM >= 50 and >= behaviour, but a failed seed: n counts completed runs
            Point("sac", [above_behaviour] * 4 + [0.0], statuses={4: "failed"}),
            Point("td3", [1.0, 2.0, 3.0, 4.0, 5.0], networks=["critic"]),  # SAM: not a level
        ],
    )
    levels = compute_sweep_tables(sweep, n_boot=N_BOOT).baselines.set_index("algo.name")
    assert list(levels.index) == ["td3", "ddpg", "sac"]
    td3 = levels.loc["td3"]
    assert td3["iqm"] == pytest.approx(scipy_stats.trim_mean(learning, 0.25))  # 80
    assert td3["ci_low"] <= td3["iqm"] <= td3["ci_high"] and td3["n"] == 5
    assert td3["behaviour_normalized"] == pytest.approx(behaviour)
    assert td3["eval_episodes"] == "10"
    assert behaviour < 80 and td3["verdict"] == LEARNS
    assert levels.loc["ddpg", "verdict"] == NOT_LEARNING
    assert "< 50" in levels.loc["ddpg", "reason"]
    assert levels.loc["sac", "n"] == 4 and levels.loc["sac", "verdict"] == LEARNS
    assert (sweep / "baselines.csv").exists() is False  # computing writes nothing

    out = CliRunner().invoke(summarize_cmd, [str(sweep), "--n-boot", "50"])
    assert out.exit_code == 0, out.output
    assert "Adam baseline ddpg on pendulum-replay: does not learn" in out.output
    written = (sweep / "baselines.csv").read_text()
    assert written.splitlines()[0].startswith("algo.name,dataset.name,n,iqm,ci_low,ci_high")


def test_below_behaviour_does_not_learn(tmp_path: Path, behaviours: dict[str, float]) -> None:
    # A score above 50 but under the behaviour policy's own return (expert data) is no learning
    expert = behaviours["pendulum-expert"]
    assert expert > 60.0
    points = [
        Point("cql", [expert - 5.0] * 5, dataset="pendulum-expert"),
        Point("iql", [expert + 5.0] * 5, dataset="pendulum-expert"),
    ]
    levels = compute_sweep_tables(write_point_sweep(tmp_path / "t", points), n_boot=N_BOOT)
    verdicts = dict(zip(levels.baselines["algo.name"], levels.baselines["verdict"], strict=True))
    assert verdicts == {"cql": NOT_LEARNING, "iql": LEARNS}
    assert "< behaviour policy" in levels.baselines["reason"][0]


def test_too_few_episodes_or_no_data_is_unknown(
    tmp_path: Path, behaviours: dict[str, float]
) -> None:
    sweep = write_point_sweep(tmp_path / "few", [Point("td3", [99.0] * 3)], eval_episodes=3)
    level = compute_sweep_tables(sweep, n_boot=N_BOOT).baselines.iloc[0]
    assert level["verdict"] == UNKNOWN and "3 episodes (< 10)" in level["reason"]
    # the dataset the runs used is not cached: nothing is generated, the reason says so
    uncached = write_point_sweep(tmp_path / "u", [Point("td3", [99.0] * 3)], dataset_size=700)
    level = compute_sweep_tables(uncached, n_boot=N_BOOT).baselines.iloc[0]
    assert level["verdict"] == UNKNOWN
    assert "samrl data make pendulum-replay --size 700 --seed 0" in level["reason"]
