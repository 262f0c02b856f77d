"""Names of the numbers a run logs and of the columns derived from them, in one place.

The SAM engine names each measurement `<net>_<metric>` (`critic_sharpness`), or
`<net>_rho<r>_<metric>` when measured at a fixed probe radius (`critic_rho0.05_sharpness`);
summaries add `_last10` (the mean over the last epochs) and `posthoc_` (measured afterwards on
the last checkpoint). Producers build names with these functions and readers (the CSV tables,
progress lines, summaries, plots) classify names with them, so a new per-network metric is one
line in `SAM_METRICS` plus its computation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable


@dataclasses.dataclass(frozen=True)
class NetMetric:
    """One per-network measurement of the SAM engine: its column suffix, what a plot calls it
    (after the network's name) and its y-axis unit."""

    suffix: str
    title: str
    unit: str


SHARPNESS = NetMetric("sharpness", "sharpness (own training rho)", "L(w+eps) - L(w)")
LOSS_PERTURBED = NetMetric("loss_perturbed", "loss at w+eps", "loss (per minibatch, epoch mean)")
GRAD_NORM = NetMetric("grad_norm", "gradient norm", "||grad L(w)||")
GRAD_COSINE = NetMetric("grad_cosine", "gradient cosine", "cos(grad L(w), grad L(w+eps))")
#: What the engine logs per network into sharpness.csv, in this column order.
SAM_METRICS = (SHARPNESS, LOSS_PERTURBED, GRAD_NORM, GRAD_COSINE)
#: A fixed-radius probe measures these (forward only: no gradient at w + eps).
FIXED_RADIUS_METRICS = (SHARPNESS, LOSS_PERTURBED)

#: The loss of a single-network algorithm (DQN family, BC, transformers); others: `<net>_loss`.
LOSS = "loss"
_LOSS_SUFFIX = "_loss"
#: Summary columns: a sharpness.csv column averaged over the last epochs.
LAST10_SUFFIX = "_last10"
#: Summary columns measured after training on the last checkpoint (samrl sharpness / hessian).
POSTHOC_PREFIX = "posthoc_"
#: Post-hoc sharpness a sweep compares across radii, like a probe's `_sharpness`.
WORST_CASE = "worst_case"
AVERAGE_CASE = "average_case"
POSTHOC_SHARPNESS = (WORST_CASE, AVERAGE_CASE)
POSTHOC_HESSIAN = ("lambda_1", "trace")

_FIXED_RADIUS = re.compile(
    rf"(?:{POSTHOC_PREFIX})?(\w+?)_rho([\d.e+-]+)_({SHARPNESS.suffix}|{WORST_CASE})"
)


def metric_name(prefix: str, metric: NetMetric | str) -> str:
    """`<prefix>_<metric>`: prefix is a network name or a fixed-radius prefix."""
    suffix = metric.suffix if isinstance(metric, NetMetric) else metric
    return f"{prefix}_{suffix}"


def side_sharpness_name(side: str, net: str) -> str:
    """`<side>_<net>_sharpness`: the sharpness column of one side (`adam`, `sam`) of a
    comparison table (the corruption table and its figure)."""
    return metric_name(f"{side}_{net}", SHARPNESS)


def side_sharpness_networks(columns: Iterable[str], side: str = "adam") -> list[str]:
    """The networks that have a `side_sharpness_name(side, net)` column, in column order."""
    head, tail = f"{side}_", f"_{SHARPNESS.suffix}"
    return [
        c.removeprefix(head).removesuffix(tail)
        for c in columns
        if c.startswith(head) and c.endswith(tail)
    ]


def fixed_radius_prefix(net: str, rho: float) -> str:
    """Metric prefix of sharpness measured at one fixed radius (`critic_rho0.05`), the same in
    every run of a rho sweep, whatever radius (if any) the run trains with."""
    return f"{net}_rho{rho:g}"


def posthoc_name(prefix: str, column: str) -> str:
    """`posthoc_<prefix>_<column>`: a post-hoc measurement in a summary row."""
    return f"{POSTHOC_PREFIX}{prefix}_{column}"


def last10_name(column: str) -> str:
    return f"{column}{LAST10_SUFFIX}"


def without_last10(column: str) -> str:
    return column.removesuffix(LAST10_SUFFIX)


def is_last10(column: str) -> bool:
    return column.endswith(LAST10_SUFFIX)


def is_posthoc(column: str) -> bool:
    return column.startswith(POSTHOC_PREFIX)


def is_sam_metric(name: str) -> bool:
    """Whether a logged metric is the SAM engine's (it goes to sharpness.csv, not loss.csv)."""
    return name.endswith(tuple(f"_{m.suffix}" for m in SAM_METRICS))


def sam_metric_of(name: str) -> tuple[str, NetMetric] | None:
    """(prefix, metric) of a SAM engine metric name; None for any other name."""
    for metric in SAM_METRICS:
        if name.endswith(f"_{metric.suffix}"):
            return name.removesuffix(f"_{metric.suffix}"), metric
    return None


def is_loss(name: str) -> bool:
    return name == LOSS or name.endswith(_LOSS_SUFFIX)


def is_sharpness(name: str) -> bool:
    """`<net>_sharpness` or `<net>_rho<r>_sharpness` (a column of sharpness.csv)."""
    return name.endswith(f"_{SHARPNESS.suffix}")


def is_headline(name: str) -> bool:
    """Shown in progress bars, epoch lines and default plots: the losses and the sharpness."""
    return is_loss(name) or is_sharpness(name)


def is_sharpness_summary(column: str) -> bool:
    """A summary column of sharpness: `<net>..._sharpness_last10` or a post-hoc worst case."""
    return column.endswith(last10_name(f"_{SHARPNESS.suffix}")) or column.endswith(f"_{WORST_CASE}")


def fixed_radius_parts(name: str) -> tuple[str, str, bool] | None:
    """(net, rho as written, post hoc?) of fixed-radius sharpness (`critic_rho0.05_sharpness`,
    `posthoc_critic_rho0.05_worst_case`, with or without `_last10`); None otherwise."""
    match = _FIXED_RADIUS.fullmatch(without_last10(name))
    if match is None:
        return None
    net, rho, _ = match.groups()
    return net, rho, is_posthoc(name)


def is_fixed_radius(column: str) -> bool:
    """Sharpness measured at one radius shared by a sweep (probe or post hoc), in any column
    derived from it (`_last10`, `_iqm`, ...)."""
    return _FIXED_RADIUS.search(column) is not None
