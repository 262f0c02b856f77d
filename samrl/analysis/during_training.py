"""Hessian curvature measured during training (``analysis.hessian`` in a config).

train.py calls :func:`hessian_row` after every ``every_epochs``-th epoch, inside a forked RNG,
and appends the row to ``hessian.csv``. The batch and the random draws inside the loss depend
only on ``seed`` (the run's seed), so rows of different epochs are measured on the same data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from samrl.analysis.curvature import hutchinson_trace, top_eigenvalues
from samrl.analysis.network_loss import evaluation_batch, network_loss_fn, networks_of
from samrl.metrics import metric_name

if TYPE_CHECKING:
    from samrl.config import HessianSection


def network_curvature(
    algo: Any,
    net: str,
    batch: Any,
    *,
    top_k: int,
    trace_samples: int,
    seed: int,
) -> dict[str, float]:
    """Top-k eigenvalues (and Hutchinson trace) of one network's loss on ``batch``.

    Keys: ``lambda_1..k`` (descending), ``trace`` and ``trace_se`` when ``trace_samples > 0``,
    ``hvp_count`` (Hessian-vector products used, the cost).
    """
    loss_fn, params = network_loss_fn(algo, net, batch, seed=seed)
    info: dict[str, Any] = {}
    values, _ = top_eigenvalues(loss_fn, params, top_k, seed=seed, info=info)
    out = {f"lambda_{i + 1}": float(v) for i, v in enumerate(values)}
    hvps = int(info["n_hvp"])
    if trace_samples > 0:
        trace, se = hutchinson_trace(loss_fn, params, trace_samples, seed=seed)
        out.update(trace=trace, trace_se=se)
        hvps += trace_samples
    out["hvp_count"] = hvps  # an int, so the CSV shows a count
    return out


def hessian_row(algo: Any, dataset: Any, settings: HessianSection, seed: int) -> dict[str, float]:
    """One hessian.csv row: ``<net>_lambda_1..k``, ``<net>_trace``, ``<net>_trace_se`` (with
    ``trace_samples > 0``) and ``<net>_hvp_count`` for each network in ``settings.networks``
    (all networks when None). ``settings`` is the config's ``analysis.hessian``; the
    spectral density is computed post hoc only (``samrl hessian --density``).
    """
    batch = evaluation_batch(algo, dataset, int(settings.n_transitions), seed)
    nets = settings.networks or list(networks_of(algo))
    row: dict[str, float] = {}
    for net in nets:
        values = network_curvature(
            algo,
            net,
            batch,
            top_k=int(settings.top_k),
            trace_samples=int(settings.trace_samples),
            seed=seed,
        )
        row.update({metric_name(net, key): value for key, value in values.items()})
    return row
