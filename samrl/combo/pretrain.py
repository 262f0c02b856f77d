"""Dynamics training before the policy: held-out split, bootstrap, early stopping, dynamics.csv.

Every gradient step goes through `impl.update(DynamicsBatch)`, i.e. the impl's
`_compute_dynamics_grad` + `dynamics_optim.step()`, so SAM applies to the model like to any
other network, and its sharpness metrics come back with the step's metrics.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

import torch
from tqdm import tqdm

from samrl.combo.dynamics import DynamicsBatch, ProbabilisticEnsemble
from samrl.progress import disable_unless_terminal
from samrl.run.csv_writer import CsvTable

DYNAMICS_CSV = "dynamics.csv"
DYNAMICS_COLUMNS = ("epoch", "train_nll", "val_nll", "val_mse")  # then any SAM/probe metrics
EVAL_CHUNK = 10_000  # rows per forward pass when evaluating large validation sets


def _take(data: DynamicsBatch, index: torch.Tensor, weights: torch.Tensor) -> DynamicsBatch:
    return DynamicsBatch(
        observations=data.observations[index],
        actions=data.actions[index],
        rewards=data.rewards[index],
        next_observations=data.next_observations[index],
        weights=weights,
    )


def evaluate(dynamics: ProbabilisticEnsemble, data: DynamicsBatch) -> tuple[float, float]:
    """(NLL, MSE) over all of `data`, in chunks."""
    n = data.observations.shape[0]
    nll = mse = 0.0
    for start in range(0, n, EVAL_CHUNK):
        index = torch.arange(start, min(n, start + EVAL_CHUNK), device=data.observations.device)
        part_nll, part_mse = dynamics.evaluate(_take(data, index, data.weights[:, index]))
        nll += part_nll * len(index)
        mse += part_mse * len(index)
    return nll / n, mse / n


def _split(
    dynamics: ProbabilisticEnsemble,
    data: DynamicsBatch,
    holdout_ratio: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, DynamicsBatch, torch.Tensor]:
    """(training indices, the validation transitions, each member's bootstrap counts of the
    training transitions), drawn from `generator` in this order; the normalizer is fitted on
    the training part."""
    device = data.observations.device
    n = data.observations.shape[0]
    if n < 2:
        raise ValueError(f"the dynamics model needs at least 2 transitions, got {n}")
    order = torch.randperm(n, generator=generator).to(device)
    n_val = min(n - 1, max(1, round(holdout_ratio * n)))
    val_index, train_index = order[:n_val], order[n_val:]
    n_train = train_index.shape[0]
    members = dynamics.n_members
    ones = torch.ones((members, n_val), device=device)
    validation = _take(data, val_index, ones)
    dynamics.fit_normalizer(_take(data, train_index, data.weights))
    # Bootstrap: member m sees transition i as often as it was drawn in its resample of size n.
    draws = torch.randint(n_train, (members, n_train), generator=generator)
    counts = torch.stack([torch.bincount(d, minlength=n_train) for d in draws])
    return train_index, validation, counts.to(device=device, dtype=torch.float32)


def _train_epoch(
    impl: Any,
    data: DynamicsBatch,
    train_index: torch.Tensor,
    counts: torch.Tensor,
    generator: torch.Generator,
    batch_size: int,
    step: int,
) -> tuple[dict[str, float], int, int]:
    """One pass over the training rows in the generator's order: the summed metrics, the
    number of updates and the next update's index."""
    sums: dict[str, float] = defaultdict(float)
    order = torch.randperm(train_index.shape[0], generator=generator)
    chunks = order.to(data.observations.device).split(batch_size)
    for chunk in chunks:
        metrics = impl.update(_take(data, train_index[chunk], counts[:, chunk]), step)
        step += 1
        for key, value in metrics.items():
            sums[key] += value
    return sums, len(chunks), step


def _epoch_row(
    epoch: int, sums: dict[str, float], n_steps: int, val_nll: float, val_mse: float
) -> dict[str, float]:
    """An epoch's row of dynamics.csv: the mean training NLL, validation NLL and MSE, then the
    means of the SAM/probe metrics of the dynamics network (dynamics_sharpness, ...), if any."""
    row = {
        "epoch": epoch,
        "train_nll": sums.pop("dynamics_nll") / n_steps,
        "val_nll": val_nll,
        "val_mse": val_mse,
    }
    for key in ("dynamics_loss", "dynamics_logstd_bound"):
        sums.pop(key, None)
    row.update({k: v / n_steps for k, v in sorted(sums.items())})
    return row


def train_dynamics(
    impl: Any,
    data: DynamicsBatch,
    *,
    batch_size: int,
    max_epochs: int,
    patience: int,
    holdout_ratio: float,
    csv_path: Path | None = None,
    progress: bool = False,
    stream: IO[str] | None = None,
) -> list[dict[str, float]]:
    """Train `impl.dynamics` on `data` (weights ignored); returns one row per epoch.

    The split, the bootstrap resamples and the minibatch order come from a generator seeded
    from torch's global RNG, so the run's seed decides them. The best validation-NLL weights
    are kept.
    """

    dynamics: ProbabilisticEnsemble = impl.dynamics
    generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
    train_index, validation, counts = _split(dynamics, data, holdout_ratio, generator)

    if csv_path is not None:
        csv_path.unlink(missing_ok=True)  # an interrupted pretraining starts over, and its table
    table = CsvTable(csv_path) if csv_path is not None else None
    rows: list[dict[str, float]] = []
    best, best_state, stale, step = math.inf, None, 0, 0
    bar = tqdm(
        range(1, max_epochs + 1),
        disable=disable_unless_terminal(progress),
        file=stream,
        desc="dynamics",
        leave=False,
    )
    for epoch in bar:
        sums, n_steps, step = _train_epoch(
            impl, data, train_index, counts, generator, batch_size, step
        )
        impl.modules.set_eval()
        val_nll, val_mse = evaluate(dynamics, validation)
        row = _epoch_row(epoch, sums, n_steps, val_nll, val_mse)
        rows.append(row)
        if table is not None:
            table.append(row)
        bar.set_postfix({"val_nll": f"{val_nll:.3g}"}, refresh=False)
        if val_nll < best:
            best, stale = val_nll, 0
            best_state = {k: v.detach().clone() for k, v in dynamics.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    bar.close()
    if best_state is not None:
        dynamics.load_state_dict(best_state)
    with torch.no_grad():
        dynamics.trained.fill_(True)
    return rows
