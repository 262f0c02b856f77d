"""Paper tables (scores.csv/.md/.tex): final and best scores recomputed from summary.csv and
from each run's eval.csv; the LaTeX compiled when pdflatex is there, else checked by structure."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.runs import write_run

from samrl.results.aggregate import summarize_sweep

ALGOS = ("cql", "td3_plus_bc")
DATASETS = ("pendulum-medium", "pendulum-replay")
OPTIMS = (("adam", 0.0), ("sam", 0.05), ("sam", 0.1))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    runs = []
    for algo in ALGOS:
        for dataset in DATASETS:
            for optim, rho in OPTIMS:
                for seed in range(3):
                    point = {
                        "algo.name": algo,
                        "dataset.name": dataset,
                        "optim.name": optim,
                        "optim.rho": rho,
                    }
                    run_id = f"{algo}_{dataset}_{optim}{rho}_s{seed}"
                    run = write_run(root / "runs" / run_id, rho=rho, seed=seed, sweep_point=point)
                    status = json.loads((run / "status.json").read_text())
                    # Two runs at a time, 10 s each: 36 runs take 3 min elapsed, 6 min summed.
                    start = 10 * (len(runs) // 2)
                    status.update(
                        started_at=f"2025-01-01T00:{start // 60:02d}:{start % 60:02d}",
                        ended_at=f"2025-01-01T00:{(start + 10) // 60:02d}:{(start + 10) % 60:02d}",
                        wall_time_s=10.0,
                    )
                    (run / "status.json").write_text(json.dumps(status))
                    # Non-monotone curves, so best and final differ.
                    scores = rng.uniform(0, 100, size=4)
                    pd.DataFrame(
                        {
                            "epoch": [1, 2, 3, 4],
                            "step": [10, 20, 30, 40],
                            "return_mean": scores * 3,
                            "return_std": 1.0,
                            "normalized_score": scores,
                        }
                    ).to_csv(run / "eval.csv", index=False)
                    runs.append(
                        {"run_id": run_id, "dir": f"runs/{run_id}", "point": point, "seed": seed}
                    )
    grid = {
        "algo.name": list(ALGOS),
        "dataset.name": list(DATASETS),
        "optim.name": ["adam", "sam"],
        "optim.rho": [0.0, 0.05, 0.1],
    }
    spec = {"name": "t", "base_config": "x.yaml", "grid": grid, "seeds": [0, 1, 2], "runs": runs}
    (root / "sweep.json").write_text(json.dumps(spec))
    summarize_sweep(root, n_boot=50)
    return root


def test_final_and_best_recomputed_from_summary_and_eval_csv(sweep: Path):
    summary = pd.read_csv(sweep / "summary.csv")
    table = pd.read_csv(sweep / "scores.csv")
    assert len(table) == len(ALGOS) * len(DATASETS) * len(OPTIMS)
    assert set(table["score"]) == {"normalized_score"}
    for _, row in table.iterrows():
        optim, rho = ("adam", 0.0) if row["variant"] == "Adam" else ("sam", None)
        runs = summary[
            (summary["algo.name"] == row["algo"])
            & (summary["dataset.name"] == row["dataset"])
            & (summary["optim.name"] == optim)
        ]
        if rho is None:
            rho = float(re.search(r"rho=([\d.]+)", row["variant"]).group(1))
            runs = runs[np.isclose(runs["optim.rho"], rho)]
        assert len(runs) == row["n"] == 3
        # By hand from each run's eval.csv: final = last row, best = max over rows.
        finals, bests = [], []
        for relative in runs["run_dir"]:
            evals = pd.read_csv(sweep / relative / "eval.csv")["normalized_score"]
            finals.append(evals.iloc[-1])
            bests.append(evals.max())
        assert row["final_mean"] == pytest.approx(np.mean(finals), rel=1e-12)
        assert row["final_std"] == pytest.approx(np.std(finals, ddof=1), rel=1e-12)
        assert row["best_mean"] == pytest.approx(np.mean(bests), rel=1e-12)
        assert row["best_std"] == pytest.approx(np.std(bests, ddof=1), rel=1e-12)
        assert row["best_mean"] >= row["final_mean"]
        assert row["final_mean"] == pytest.approx(runs["final_normalized_score"].mean())


def test_markdown_has_both_tables_in_the_three_way_layout(sweep: Path):
    text = (sweep / "scores.md").read_text()
    assert "Final normalized score" in text and "Best normalized score" in text
    assert "Headline normalized score" in text
    header = next(line for line in text.splitlines() if line.startswith("| dataset"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[0] == "dataset" and len(cells) == 1 + len(ALGOS) * len(OPTIMS)
    assert cells[1] == "CQL Adam" and cells[-1] == "TD3+BC SAM rho=0.1"
    table = pd.read_csv(sweep / "scores.csv")
    for dataset in DATASETS:
        line = next(x for x in text.splitlines() if x.startswith(f"| {dataset} |"))
        bold = re.findall(r"\*\*([\d.]+) ±", line)
        assert len(bold) == len(ALGOS)  # the best variant of each algorithm
        for algo, value in zip(ALGOS, bold, strict=True):
            rows = table[(table["algo"] == algo) & (table["dataset"] == dataset)]
            assert float(value) == pytest.approx(rows["headline_mean"].max(), abs=0.051)


def test_latex_is_booktabs_and_compiles(sweep: Path, tmp_path: Path):
    tex = (sweep / "scores.tex").read_text()
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){2-4}", r"$\rho$="):
        assert token in tex, token
    assert tex.count(r"\begin{tabular}") == 3 == tex.count(r"\end{tabular}")
    n_cols = 1 + len(ALGOS) * len(OPTIMS)
    assert "{l" + "r" * (n_cols - 1) + "}" in tex
    for line in tex.splitlines():
        if line.endswith(r"\\") and r"\multicolumn" not in line:
            assert line.count("&") == n_cols - 1, line
    assert "pendulum-medium" in tex and "TD3+BC" in tex and "td3_plus_bc" not in tex
    if shutil.which("pdflatex") is None:
        return
    document = "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
    (tmp_path / "t.tex").write_text(document + tex + "\\end{document}\n")
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def test_report_shows_tables_base_name_and_both_wall_times(sweep: Path):
    from samrl.results.report import write_report

    text = write_report(sweep, n_boot=50).read_text()
    assert "## Paper tables" in text and "| dataset | CQL Adam |" in text
    assert "- `name`: t\n" in text  # the sweep's name, not the runs' folder name
    assert "Sweep elapsed: 3m00s" in text and "Sum of run times: 6m00s" in text
