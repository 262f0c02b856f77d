"""The README's numbers from the shipped sweeps are generated from their CSVs
(samrl.results.readme_tables): a block that drifts from its CSVs fails here."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from samrl.results.labels import sam_networks
from samrl.results.paper import algo_name
from samrl.results.readme_tables import BLOCKS, COMMAND, blocks_in, end_marker, stale_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_block_is_in_the_readme_once() -> None:
    text = README.read_text()
    assert sorted(blocks_in(text)) == sorted(BLOCKS)
    for name in BLOCKS:
        assert text.count(end_marker(name)) == 1, name


def test_the_readme_blocks_match_the_shipped_csvs() -> None:
    stale = stale_blocks(README.read_text())
    assert not stale, f"README blocks {stale} differ from results/*.csv: run `{COMMAND}`"


def test_a_changed_number_is_caught() -> None:
    text = README.read_text()
    name = "study"
    head, block = text.split(f"<!-- results:{name}:start", 1)
    block, tail = block.split(end_marker(name), 1)
    changed = block.replace("[", "[1", 1)  # one quoted number edited by hand
    assert changed != block
    edited = head + f"<!-- results:{name}:start" + changed + end_marker(name) + tail
    assert stale_blocks(edited) == [name]


def _trimmed(values: list[float]) -> float:
    """The interquartile mean by hand: int(n / 4) values dropped at each end of the sorted list."""
    cut = len(values) // 4
    kept = sorted(values)[cut : len(values) - cut]
    return sum(kept) / len(kept)


def test_the_mujoco_study_block_recomputes_from_the_runs() -> None:
    """Each MuJoCo study row's headline IQM and sharpness, recomputed from the runs' own eval.csv
    and sharpness.csv without samrl's aggregation: the headline from the evaluations at
    step >= 80% of the last, the sharpness from the mean of each run's last 10% of epochs."""
    root = README.parent
    block = BLOCKS["mujoco-study"](root)
    lines = block.splitlines()[2:]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    assert rows, "the MuJoCo study block has no rows"
    summary = pd.read_csv(root / "results" / "mujoco" / "summary.csv")
    done = summary[summary["status"] == "completed"]
    checked = 0
    for cells in rows:
        algo, dataset, sam_on = cells[0], cells[1], cells[2]
        nets = "" if sam_on.startswith("–") else sam_on
        runs = [
            root / "results" / "mujoco" / r["run_dir"]
            for _, r in done.iterrows()
            if algo_name(r["algo.name"]) == algo
            and r["dataset.name"] == dataset
            and ", ".join(sorted(sam_networks(r["optim.name"], r["optim.networks"]))) == nets
        ]
        assert len(runs) == int(cells[3])
        headlines = []
        for run in runs:
            evals = pd.read_csv(run / "eval.csv")
            window = evals[evals["step"] >= 0.8 * evals["step"].max()]
            headlines.append(float(window["normalized_score"].mean()))
        assert cells[4].startswith(f"{_trimmed(headlines):.1f} ["), (cells, headlines)
        for position, net in ((7, "critic"), (8, "actor")):
            column = f"{net}_rho0.05_sharpness"
            last = []
            for run in runs:
                epochs = pd.read_csv(run / "sharpness.csv")[column]
                last.append(float(epochs.tail(math.ceil(len(epochs) / 10)).mean()))
            assert cells[position] == f"{_trimmed(last):.3g}", (cells, net)
        checked += 1
    assert checked >= 3


def test_the_corruption_pilot_block_recomputes_from_the_runs() -> None:
    """Each seed's headline at 20k (the full budget) in the corruption pilot's block is the mean
    of its eval.csv over steps >= 16k, read here without samrl."""
    root = README.parent
    lines = BLOCKS["corruption-pilot"](root).splitlines()
    header = [c.strip() for c in lines[0].strip().strip("|").split("|")]
    column = header.index("headline at 20k, per seed")
    runs = sorted((root / "results" / "corruption-pilot" / "runs").iterdir())
    expected = {}
    for run in runs:
        evals = pd.read_csv(run / "eval.csv")
        key = (run.name.split("_")[0], "mixed" if "actions" in run.name else "observations")
        value = evals.loc[evals["step"] >= 16_000, "normalized_score"].mean()
        expected.setdefault(key, []).append(f"{value:.1f}")
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[2:]]
    assert len(rows) == len(expected) == 4
    for cells in rows:
        key = (cells[0].lower(), cells[1].split()[-1])
        assert cells[column] == " / ".join(expected[key]), (cells, expected[key])


def test_the_pendulum_comparison_has_no_column_without_a_cell() -> None:
    """A dataset whose SAM arms were cut (hopper) gets no column of dashes, and every cell that
    is filled names its n."""
    block = BLOCKS["mujoco-vs-pendulum"](README.parent)
    lines = block.splitlines()
    header = [cell.strip() for cell in lines[0].strip().strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[2:]]
    assert header[:2] == ["algorithm", "SAM on"] and "pendulum-replay" in header
    for column in range(2, len(header)):
        cells = [row[column] for row in rows]
        assert any(cell != "–" for cell in cells), header[column]
        assert all(cell == "–" or ", n = " in cell for cell in cells), header[column]
