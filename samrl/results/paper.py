"""Paper tables from summary.csv: headline, final and best score per grid point (headline =
samrl.results.headline, the mean over the evaluations of the last 20% of training, the score
samrl's claims rest on; final = the last evaluation, best = the best evaluation of a run, the
CORL / d3rlpy convention; each averaged over seeds), laid out algorithm x {Adam, SAM rho ...}
x dataset, as CSV, Markdown and LaTeX (booktabs).

scores.csv is the long form (one row per algorithm, dataset and optimizer variant, numbers
only); scores.md and scores.tex hold the three wide tables (headline, final, best): datasets
as rows, one column group per algorithm with a column per optimizer variant, "mean ± std (n)"
cells, the best mean of each algorithm and dataset in bold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samrl.results.headline import KIND_TEXT, SCORE_KINDS
from samrl.rundir import SCORE_FILES, atomic_write, write_csv_atomic
from samrl.sam.variants import BASE_NAMES, display_name, is_base
from samrl.status import RunStatus

ROW_KEYS = ("algo.name", "dataset.name")
ALGO_NAMES = {
    "td3_plus_bc": "TD3+BC",
    "cql": "CQL",
    "iql": "IQL",
    "bc": "BC",
    "sac": "SAC",
    "awac": "AWAC",
    "dqn": "DQN",
    "rebrac": "ReBRAC",
    "calql": "Cal-QL",
    "ddpg": "DDPG",
    "td3": "TD3",
    "bcq": "BCQ",
    "bear": "BEAR",
    "crr": "CRR",
    "plas": "PLAS",
    "riql": "RIQL",
    "combo": "COMBO",
}


@dataclass(frozen=True)
class ScoreTables:
    long: pd.DataFrame  # algo, dataset, variant, n, {headline,final,best}_{mean,std}
    score: str  # "normalized_score" or "return"


def _variant_order(frame: pd.DataFrame) -> list[str]:
    """Adam (or rho = 0) first, then increasing rho, then the order of appearance."""
    first = frame.drop_duplicates("variant")
    adam = first["optim.name"].astype(str).isin(BASE_NAMES)  # Adam first, then by rho
    rho = pd.to_numeric(first["optim.rho"], errors="coerce").fillna(0.0)
    order = pd.DataFrame({"v": first["variant"], "a": ~adam, "rho": rho, "i": range(len(first))})
    return list(order.sort_values(["a", "rho", "i"])["v"])


def variant_labels(summary: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """Per summary row: its optimizer variant without algorithm and dataset ("Adam",
    "SAM rho=0.05", "SAM actor rho=0.1", "SAM critic+actor"): the optimizer's name, the SAM
    networks and rho where they vary, then any other varying grid key."""
    other = [k for k in keys if k not in ROW_KEYS and k != "seed"]
    for key in ("optim.name", "optim.rho", "optim.networks"):
        if key not in other and key in summary:
            other.append(key)
    points = [{k: row.get(k) for k in other} for _, row in summary.iterrows()]
    sam = [p for p in points if not is_base(p.get("optim.name"))]
    varies = {k for k in other if len({json.dumps(p.get(k), default=str) for p in sam}) > 1}
    return [_variant(p, varies) for p in points]


def _variant(point: dict[str, Any], varies: set[str]) -> str:
    name = str(point.get("optim.name"))
    if is_base(name):  # rho and SAM networks mean nothing to the base optimizer
        return "Adam" if name == "adam" else "Base"
    parts = [display_name(name)]
    for key in sorted(varies - {"optim.name"}, key=lambda k: (k != "optim.networks", k)):
        value = point.get(key)
        if key == "optim.networks":
            nets = json.loads(value) if isinstance(value, str) else value
            parts.append("+".join(nets) if isinstance(nets, list) else str(nets))
        elif key == "optim.rho":
            parts.append(f"rho={float(value):g}")
        else:
            parts.append(f"{key.rsplit('.', 1)[-1]}={value}")
    if "optim.rho" not in varies and len(parts) == 1:
        parts.append(f"rho={float(point.get('optim.rho')):g}")
    return " ".join(parts)


def score_tables(summary: pd.DataFrame, keys: Sequence[str]) -> ScoreTables:
    """Final and best score statistics of completed runs per algorithm, dataset and variant."""
    done = summary[summary["status"] == RunStatus.COMPLETED].copy()
    normalized = done["final_normalized_score"].notna().any() if len(done) else False
    score = "normalized_score" if normalized else "return"
    done["variant"] = variant_labels(done, keys) if len(done) else []
    rows = []
    for (algo, dataset, variant), runs in done.groupby(
        ["algo.name", "dataset.name", "variant"], sort=False, dropna=False
    ):
        row: dict[str, Any] = {"algo": algo, "dataset": dataset, "variant": variant}
        row["n"] = len(runs)
        for kind in SCORE_KINDS:
            column = f"{kind}_{score}"
            values = pd.to_numeric(runs.get(column, pd.Series(dtype=float)), errors="coerce")
            values = values.dropna()
            row[f"{kind}_mean"] = float(values.mean()) if len(values) else math.nan
            # Sample standard deviation over seeds (ddof=1); NaN for one seed.
            row[f"{kind}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    long = pd.DataFrame(
        rows,
        columns=[
            "algo",
            "dataset",
            "variant",
            "n",
            *(f"{kind}_{part}" for kind in SCORE_KINDS for part in ("mean", "std")),
        ],
    )
    if len(long):
        order = _variant_order(done)
        long["_v"] = long["variant"].map(order.index)
        long = long.sort_values(["algo", "dataset", "_v"], kind="stable").drop(columns="_v")
    return ScoreTables(long.reset_index(drop=True), score)


def _cell(mean: float, std: float, n: int, pm: str) -> str:
    if not math.isfinite(mean):
        return "-"
    text = f"{mean:.1f}"
    if math.isfinite(std):
        text += f" {pm} {std:.1f}"
    return text


def _wide(tables: ScoreTables, kind: str) -> tuple[list[str], list[tuple[str, list[str]]], dict]:
    """Datasets, [(algorithm, [variants])], {(dataset, algo, variant): (mean, std, n, best)}."""
    long = tables.long
    datasets = list(dict.fromkeys(long["dataset"]))
    groups = [
        (algo, list(dict.fromkeys(long.loc[long["algo"] == algo, "variant"])))
        for algo in dict.fromkeys(long["algo"])
    ]
    cells = {}
    for (dataset, algo), frame in long.groupby(["dataset", "algo"], sort=False):
        means = frame[f"{kind}_mean"].to_numpy(dtype=float)
        top = np.nanmax(means) if np.isfinite(means).any() else math.nan
        for _, r in frame.iterrows():
            mean = float(r[f"{kind}_mean"])
            cells[(dataset, algo, r["variant"])] = (
                mean,
                float(r[f"{kind}_std"]),
                int(r["n"]),
                len(frame) > 1 and mean == top,
            )
    return datasets, groups, cells


def _title(tables: ScoreTables, kind: str) -> str:
    what = "normalized score" if tables.score == "normalized_score" else "return"
    name, when = KIND_TEXT[kind].split(" ", 1)
    return f"{name.capitalize()} {what} {when}, mean ± std over seeds"


def algo_name(name: str) -> str:
    return ALGO_NAMES.get(str(name), str(name))


def markdown_table(rows: Sequence[Mapping[str, str]]) -> str:
    """A GitHub markdown table; the first row's keys are the header."""
    if not rows:
        return "_No runs._"
    header = list(rows[0])

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    body = [line(row.get(h, "") for h in header) for row in rows]
    return "\n".join([line(header), line("---" for _ in header), *body])


def markdown(tables: ScoreTables) -> str:
    blocks = []
    for kind in SCORE_KINDS:
        datasets, groups, cells = _wide(tables, kind)
        header = ["dataset"] + [f"{algo_name(a)} {v}" for a, vs in groups for v in vs]
        lines = [
            f"**{_title(tables, kind)}**",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        ]
        for dataset in datasets:
            row = [str(dataset)]
            for algo, variants in groups:
                for v in variants:
                    mean, std, n, best = cells.get((dataset, algo, v), (math.nan, 0, 0, False))
                    text = _cell(mean, std, n, "±")
                    row.append(f"**{text}**" if best else text)
            lines.append("| " + " | ".join(row) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def _latex_variant(label: str) -> str:
    return latex_escape(label).replace("rho=", r"$\rho$=")


def latex(tables: ScoreTables) -> str:
    """Three booktabs tables (needs \\usepackage{booktabs} in the preamble)."""
    out = [f"% samrl paper tables: {tables.score}; needs \\usepackage{{booktabs}}"]
    for kind in SCORE_KINDS:
        datasets, groups, cells = _wide(tables, kind)
        n_cols = 1 + sum(len(vs) for _, vs in groups)
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{latex_escape(_title(tables, kind))}}}",
            rf"\label{{tab:samrl-{kind}}}",
            r"\begin{tabular}{l" + "r" * (n_cols - 1) + "}",
            r"\toprule",
        ]
        top = [""] + [
            rf"\multicolumn{{{len(vs)}}}{{c}}{{{latex_escape(algo_name(a))}}}" for a, vs in groups
        ]
        lines.append(" & ".join(top) + r" \\")
        rules, start = [], 2
        for _, vs in groups:
            rules.append(rf"\cmidrule(lr){{{start}-{start + len(vs) - 1}}}")
            start += len(vs)
        lines.append(" ".join(rules))
        lines.append(
            " & ".join(["Dataset"] + [_latex_variant(v) for _, vs in groups for v in vs]) + r" \\"
        )
        lines.append(r"\midrule")
        for dataset in datasets:
            row = [latex_escape(dataset)]
            for algo, variants in groups:
                for v in variants:
                    mean, std, n, best = cells.get((dataset, algo, v), (math.nan, 0, 0, False))
                    text = _cell(mean, std, n, r"$\pm$")
                    row.append(rf"\textbf{{{text}}}" if best else text)
            lines.append(" & ".join(row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def write_tables(summary: pd.DataFrame, keys: Sequence[str], out_dir: Path) -> list[Path]:
    """scores.csv, scores.md, scores.tex in out_dir (each written atomically)."""
    tables = score_tables(summary, keys)
    csv_path, md_path, tex_path = (out_dir / name for name in SCORE_FILES)
    long = tables.long.assign(score=tables.score)
    write_csv_atomic(long, csv_path)
    atomic_write(md_path, markdown(tables))
    atomic_write(tex_path, latex(tables))
    return [csv_path, md_path, tex_path]
