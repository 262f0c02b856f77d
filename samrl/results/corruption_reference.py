"""The one published claim that SAM helps offline RL: arXiv 2511.17568 (AAAI 2026 student
abstract), as quoted in samrl issue 21.

IQL and RIQL with Adam, and with SAM over Adam on the value networks, on D4RL medium-replay
data with 30% of the transitions corrupted by RIQL's protocol, 3 seeds, evaluated in the clean
environment; D4RL normalized scores. Keys are samrl's data conditions
(samrl.data.corruption.condition_of); per condition the paper's tasks, each with
(IQL, IQL+SAM, RIQL, RIQL+SAM). The adversarial numbers are the averages the paper gives
(its tasks not broken out). It reports no clean-data numbers.
"""

from __future__ import annotations

from statistics import mean

SOURCE = (
    "arXiv 2511.17568 (as quoted in samrl issue 21): D4RL medium-replay, 30% corrupted, "
    "SAM over Adam on the value networks, 3 seeds, normalized scores"
)
#: condition -> task -> (IQL, IQL+SAM, RIQL, RIQL+SAM)
PAPER_SCORES: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "random observations": {
        "halfcheetah": (21.01, 33.33, 26.03, 33.74),
        "walker2d": (24.74, 31.75, 30.48, 30.93),
        "hopper": (58.42, 73.21, 44.09, 53.19),
    },
    "random mixed": {"halfcheetah": (20.93, 33.02, 22.08, 32.06)},
    "adversarial observations": {"average": (22.45, 36.03, 38.20, 40.09)},
}
_COLUMN = {("iql", False): 0, ("iql", True): 1, ("riql", False): 2, ("riql", True): 3}


def _tasks(condition: str, dataset: str | None) -> dict[str, tuple[float, float, float, float]]:
    """The paper's tasks that a comparison on `dataset` uses: the dataset's own task where the
    paper reports it (halfcheetah-medium -> halfcheetah), else all of the condition's."""
    tasks = PAPER_SCORES.get(condition, {})
    task = (dataset or "").split("-")[0]
    return {task: tasks[task]} if task in tasks else tasks


def paper_score(condition: str, algo: str, sam: bool, dataset: str | None = None) -> float | None:
    """The paper's score of `algo` (iql / riql) with or without SAM under `condition`: that of
    `dataset`'s task where the paper reports it, else the mean over its tasks; None where it
    reported nothing."""
    tasks = _tasks(condition, dataset)
    column = _COLUMN.get((algo, sam))
    if not tasks or column is None:
        return None
    return mean(scores[column] for scores in tasks.values())


def paper_tasks(condition: str, dataset: str | None = None) -> str:
    """The tasks a paper score averages, in words ("" when none)."""
    return ", ".join(_tasks(condition, dataset))
