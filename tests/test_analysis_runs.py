"""analysis.hessian during training and `samrl hessian/landscape/sharpness` on a real tiny run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli, tiny_config, write_config

NETS = ("actor", "critic")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-epoch tiny CQL+SAM run with analysis.hessian (top 2, trace) every epoch."""
    from samrl.config import load_config
    from samrl.run.train import run_training

    base = tmp_path_factory.mktemp("analysis_run")
    config = tiny_config(
        base,
        dataset={"size": 600},
        train={"device": "cpu"},
        analysis={"hessian": {"top_k": 2, "trace_samples": 3, "n_transitions": 100}},
    )
    path = write_config(base, config, "tiny.yaml")
    result = run_training(load_config(path), progress=False)
    assert result.status == "completed", result.message
    return result.run_dir


def copy_run(run_dir: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(run_dir, target)
    return target


def test_hessian_during_training_writes_one_row_per_epoch(run_dir: Path) -> None:
    table = pd.read_csv(run_dir / "hessian.csv")
    assert list(table["epoch"]) == [1, 2, 3] and list(table["step"]) == [10, 20, 30]
    expected = {"epoch", "step"}
    for net in NETS:
        expected |= {f"{net}_{c}" for c in ("lambda_1", "lambda_2", "trace", "trace_se")}
        expected.add(f"{net}_hvp_count")
        assert (table[f"{net}_lambda_1"] >= table[f"{net}_lambda_2"]).all()
        assert (table[f"{net}_hvp_count"] >= 2 + 3).all()
    assert set(table.columns) == expected
    assert table.notna().all().all()


def test_hessian_cli_reproduces_the_last_training_row(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(run_dir, tmp_path)
    args = ["hessian", str(run), "--top-k", "2", "--trace-samples", "3", "--n-transitions", "100"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert out.count("\n") == 1 and "hessian_posthoc.csv" in out and str(run) in out
    posthoc = pd.read_csv(run / "hessian_posthoc.csv")
    assert list(posthoc["net"]) == list(NETS) and set(posthoc["step"]) == {30}
    # same weights (checkpoint of step 30), batch, seed and noise as the epoch-3 row
    last = pd.read_csv(run / "hessian.csv").iloc[-1]
    for net in NETS:
        row = posthoc[posthoc["net"] == net].iloc[0]
        for col in ("lambda_1", "lambda_2", "trace"):
            assert row[col] == pytest.approx(last[f"{net}_{col}"], rel=1e-9), (net, col)
    # a rerun replaces its rows; another step adds rows
    assert run_cli([*args, "--net", "critic"], capsys)[0] == 0
    assert (
        run_cli(["hessian", str(run), "--step", "10", "--density", "--net", "critic"], capsys)[0]
        == 0
    )
    posthoc = pd.read_csv(run / "hessian_posthoc.csv")
    assert sorted(zip(posthoc["step"], posthoc["net"], strict=True)) == [
        (10, "critic"),
        (30, "actor"),
        (30, "critic"),
    ]
    density = pd.read_csv(run / "hessian_density_critic.csv")
    assert list(density.columns) == ["step", "grid", "density"] and set(density["step"]) == {10}
    assert (density["density"] >= 0).all()
    assert (run / "hessian_density_critic.png").stat().st_size > 5000


def test_landscape_cli_compares_runs_on_one_figure(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(run_dir, tmp_path, "a")
    other = copy_run(run_dir, tmp_path, "b")
    args = ["landscape", str(run), "--points", "5", "--span", "0.5", "--compare", str(other)]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert out.count("\n") == 1 and "landscape_critic.csv" in out and "2 runs" in out
    table = pd.read_csv(run / "landscape_critic.csv")
    assert len(table) == 10 and table["run"].nunique() == 2
    assert (run / "landscape_critic.png").stat().st_size > 1000
    # the same weights and direction seed: the same curve
    a, b = (g["loss"].to_numpy() for _, g in table.groupby("run"))
    assert (a == b).all()
    for dims in ("1", "2"):
        code, out, err = run_cli(
            ["landscape", str(run), "--net", "actor", "--dims", dims, "--points", "3"], capsys
        )
        assert code == 0, err
    # --dims 2 writes its own files: the 1-D ones stay
    assert list(pd.read_csv(run / "landscape_actor.csv").columns) == ["run", "alpha", "loss"]
    table = pd.read_csv(run / "landscape_actor_2d.csv")
    assert list(table.columns) == ["run", "alpha", "beta", "loss"] and len(table) == 9
    assert (run / "landscape_actor_2d.png").stat().st_size > 5000


def test_sharpness_cli_writes_worst_and_average_case(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(run_dir, tmp_path)
    base = [
        "sharpness",
        str(run),
        "--rho",
        "0.05",
        "--batch-size",
        "16",
        "--n-batches",
        "3",
        "--samples",
        "2",
    ]
    code, out, err = run_cli([*base, "--steps", "1"], capsys)
    assert code == 0, err
    assert out.count("\n") == 1 and "sharpness_posthoc.csv" in out
    assert run_cli([*base, "--steps", "4"], capsys)[0] == 0
    table = pd.read_csv(run / "sharpness_posthoc.csv")
    assert len(table) == 4 and set(table["net"]) == set(NETS)
    for net in NETS:
        rows = table[table["net"] == net].set_index("steps")
        assert rows.loc[4, "worst_case"] >= rows.loc[1, "worst_case"]
        assert rows.loc[1, "worst_case"] > 0
    assert {"average_case", "average_case_se", "sigma", "worst_case_se"} <= set(table.columns)


@pytest.mark.parametrize("command", ["hessian", "landscape", "sharpness"])
def test_help_has_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0 and "Example:" in out and f"samrl {command} runs/" in out


def _errors(run_dir: Path, tmp_path: Path) -> list[tuple[list[str], str]]:
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    return [
        (["hessian", str(tmp_path / "missing")], "no such directory"),
        (["landscape", str(tmp_path)], "not a samrl run directory"),
        (["sharpness", str(empty), "--rho", "0.1"], "no saved model"),
        (["hessian", str(run_dir), "--net", "critc"], "did you mean 'critic'"),
        (["landscape", str(run_dir), "--net", "temp"], "scalar"),
        (["hessian", str(run_dir), "--step", "15"], "available steps: 10, 20, 30"),
    ]


def test_user_errors_exit_2_with_one_line(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, message in _errors(run_dir, tmp_path):
        code, out, err = run_cli(args, capsys)
        assert code == 2, (args, err)
        assert out == "" and err.count("\n") == 1 and message in err, (args, err)
    assert not (run_dir / "hessian_posthoc.csv").exists()
