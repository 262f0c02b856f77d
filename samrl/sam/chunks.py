"""m-sharpness: a recorded gradient call split into calls on chunks of m minibatch rows.

d3rlpy passes the minibatch as a dataclass of batch-first tensors (TorchMiniBatch, and
TorchTrajectoryMiniBatch for transformers, whose rows are trajectories); every tensor (or tuple of
tensors, for tuple observations) whose first dimension is the batch size is sliced, and the
numpy copy d3rlpy keeps for reference is dropped. The nested scalar steps to replay stay as
recorded. Random draws (CQL's sampled actions, TD3's target noise): each chunk gets its own RNG
state, seeded from a draw made at the call's recorded state, so chunks see independent noise (as
Foret et al.'s per-device shards do; replaying the recorded state for every chunk would give all
chunks the same noise), both passes of a chunk see the same noise, and a run stays reproducible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from samrl.errors import ConfigError
from samrl.rng import RngState
from samrl.sam.tape import RecordedCall


def split_call(call: RecordedCall, m: int) -> list[RecordedCall]:
    """The call once per chunk of m rows, in order; [call] itself when m covers the batch."""
    batches = [a for a in (*call.args, *call.kwargs.values()) if _is_batch(a)]
    if not batches:
        raise RuntimeError("m-sharpness needs a minibatch argument in the recorded gradient call")
    size = _batch_size(batches[0])
    if any(_batch_size(b) != size for b in batches):
        raise RuntimeError("m-sharpness: the gradient call's minibatches differ in size")
    if m <= 0 or size % m != 0:
        raise ConfigError(
            f"must divide the minibatch size {size} (m-sharpness chunks), got {m}", key="optim.m"
        )
    if m == size:
        return [call]
    starts = range(0, size, m)
    return [
        dataclasses.replace(
            call,
            args=tuple(_slice(a, size, start, start + m) for a in call.args),
            kwargs={k: _slice(v, size, start, start + m) for k, v in call.kwargs.items()},
            rng_before=rng,
            loss=None,
            saved_calls=[],  # pass 1's network calls saw the whole batch
        )
        for start, rng in zip(starts, chunk_rng_states(call, len(starts)), strict=True)
    ]


def chunk_rng_states(call: RecordedCall, n: int) -> list[RngState]:
    """n independent RNG states derived from the call's own; the global RNG is left as it was."""
    outer = RngState.capture()
    try:
        call.rng_before.restore()
        seeds = torch.randint(0, 2**62, (n,)).tolist()
        states = []
        for seed in seeds:
            torch.manual_seed(seed)
            states.append(RngState.capture())
    finally:
        outer.restore()
    return states


def _is_batch(value: Any) -> bool:
    return (
        dataclasses.is_dataclass(value)
        and not isinstance(value, type)
        and any(isinstance(getattr(value, f.name), torch.Tensor) for f in dataclasses.fields(value))
    )


def _batch_size(batch: Any) -> int:
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    raise RuntimeError(f"m-sharpness: no batch dimension found in {type(batch).__name__}")


def _slice(value: Any, size: int, start: int, stop: int) -> Any:
    if not _is_batch(value):
        return value
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if field.name == "numpy_batch":
            changes[field.name] = None
        elif _rows(item, size):
            changes[field.name] = item[start:stop]
        elif isinstance(item, Sequence) and item and all(_rows(t, size) for t in item):
            changes[field.name] = type(item)(t[start:stop] for t in item)
    return dataclasses.replace(value, **changes)


def _rows(item: Any, size: int) -> bool:
    return isinstance(item, torch.Tensor) and item.dim() > 0 and item.shape[0] == size
