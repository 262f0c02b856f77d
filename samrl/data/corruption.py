"""Corrupted training data: the protocol of RIQL (Yang et al., ICLR 2024, arXiv 2310.12955).

What RIQL's `attack.py` does, and samrl with it:

- selection: every field named in `fields` draws its own Bernoulli(rate) over all transitions
  (`uniform < rate`), so under mixed corruption the fields are hit in different transitions;
  only training transitions are changed (the held-out episodes of `dataset.test_fraction` stay
  clean, so the held-out TD error is measured on clean data);
- random observations / actions / next observations: x + U(-eps, eps) * std, std per dimension
  over that field of the whole dataset (additive uniform noise, eps = `scale`);
- random rewards: *replaced* by U(-30 eps, 30 eps);
- adversarial rewards: r' = -eps * r;
- adversarial observations / actions / next observations: samrl/data/attacker.py (a perturbation
  in [-eps, eps] * std minimising the mean Q of critics trained on the clean data).

Each field is corrupted alone: next observations live in their own array (d3rlpy derives them
from the next row, so samrl's sampler takes this array; samrl/run/sampling.py), so corrupting
observations leaves next observations clean and vice versa. The other fields an attack reads
are the clean ones (RIQL's mixed attack reads actions already corrupted; samrl keeps each
field's corruption independent of the others, so a field's corruption under mixed corruption
equals its corruption alone).

Where samrl differs in form, not in protocol: each field has its own generator
(numpy's default_rng((seed, field))) rather than one RandomState drawn in sequence, and the
clean next observations are those d3rlpy's sampler serves (the next row inside an episode; at an
episode's end the file's `next_observations` when it has them, else the observation itself,
which d3rlpy never samples: a timeout's last step is not a transition, a terminal's next
observation is zeros).

Corrupted data are cached by a hash of the clean data, the corruption and the held-out mask
(`corrupted/<hash>.hdf5` under samrl's dataset cache, D4RL's layout, written atomically).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from samrl.data.attacker import attack, trained_attacker
from samrl.data.builtin import dataset_cache_dir
from samrl.data.hdf5 import read_d4rl_hdf5, write_d4rl_hdf5
from samrl.data.transitions import Transitions

FIELDS = ("observations", "actions", "rewards", "next_observations")
MODES = ("random", "adversarial")
#: d3rlpy algorithms an attacker may be (an ensemble of continuous Q functions plus a policy).
ATTACKER_ALGOS = ("sac", "td3")
#: Random rewards are replaced by U(-REWARD_RANGE * eps, REWARD_RANGE * eps) (RIQL's 30).
REWARD_RANGE = 30.0
#: Bump when the corrupted bytes for the same inputs change: old cache entries are not reused.
CORRUPTION_VERSION = 1


#: The data condition of a run without corruption.
CLEAN = "clean"


def condition_of(corruption: Any) -> str:
    """A run's data condition in words, from its config's `dataset.corruption` (a mapping or
    None): "clean", "random observations", "adversarial observations", "random mixed" (all
    four fields), else the mode and the fields joined by "+". Rate and scale are left out:
    a table compares conditions of one rate and scale."""
    if not corruption or not corruption.get("fields"):
        return CLEAN
    fields = [f for f in FIELDS if f in corruption["fields"]]
    what = "mixed" if len(fields) == len(FIELDS) else "+".join(f.replace("_", " ") for f in fields)
    return f"{corruption.get('mode') or 'random'} {what}"


def needs_attacker(mode: str, fields: tuple[str, ...] | list[str]) -> bool:
    """Adversarial corruption of anything but rewards needs trained critics."""
    return mode == "adversarial" and any(f != "rewards" for f in fields)


@dataclass(frozen=True)
class FieldChange:
    """How much of one field a corruption actually changed."""

    field: str
    fraction: float  # of all transitions (held-out ones included, which never change)
    mean_abs_std: float  # mean |x' - x| / std over the changed entries (nan if none)


def clean_next_observations(data: Transitions) -> np.ndarray:
    """The next observation of each row as d3rlpy serves it from the clean data."""
    obs = data.observations
    nxt = np.empty_like(obs)
    nxt[:-1] = obs[1:]
    ends = data.episode_ends - 1  # last row of each episode
    if data.next_observations is not None:
        nxt[ends] = data.next_observations[ends]
    else:
        nxt[ends] = obs[ends]
    return nxt


def field_std(values: np.ndarray) -> np.ndarray:
    """Per-dimension std over the whole field (float64; rewards: a scalar)."""
    return np.std(values.astype(np.float64), axis=0)


def field_rng(seed: int, field: str) -> np.random.Generator:
    return np.random.default_rng((int(seed), FIELDS.index(field)))


def corrupt(
    data: Transitions,
    spec: Any,
    eligible: np.ndarray,
    *,
    attacker: Any = None,
) -> Transitions:
    """The corrupted copy of `data` (its next_observations always set). `spec` is a
    resolved CorruptionSection; `eligible` marks the rows that may change (training rows);
    `attacker` is the trained attacker (samrl/data/attacker.py) for adversarial corruption
    of observations, actions or next observations."""
    clean = {
        "observations": data.observations,
        "actions": data.actions,
        "rewards": data.rewards,
        "next_observations": clean_next_observations(data),
    }
    out = {k: v.copy() for k, v in clean.items()}
    eps = float(spec.scale)
    for name in spec.fields:
        rng = field_rng(spec.seed, name)
        rows = np.flatnonzero((rng.random(len(data)) < spec.rate) & eligible)
        x = clean[name][rows]
        if name == "rewards":
            if spec.mode == "random":
                new = rng.uniform(-REWARD_RANGE * eps, REWARD_RANGE * eps, size=x.shape)
            else:
                new = x.astype(np.float64) * -eps
        else:
            std = field_std(clean[name])
            if spec.mode == "random":
                noise = rng.uniform(-eps, eps, size=x.shape) * std
            else:
                start = rng.uniform(-eps, eps, size=x.shape)
                noise = attack(
                    attacker,
                    name,
                    clean["observations"][rows],
                    clean["actions"][rows],
                    clean["next_observations"][rows],
                    start=start,
                    std=std,
                    eps=eps,
                    steps=int(spec.attack_steps),
                )
            new = x.astype(np.float64) + noise
        out[name][rows] = new.astype(out[name].dtype)
    return Transitions(
        observations=out["observations"],
        actions=out["actions"],
        rewards=out["rewards"],
        terminals=data.terminals.copy(),
        timeouts=data.timeouts.copy(),
        next_observations=out["next_observations"],
        notes=list(data.notes),
    )


def changes(clean: Transitions, corrupted: Transitions) -> list[FieldChange]:
    """Per field: the share of transitions whose value differs, and the mean absolute change
    in units of the clean field's std (dimensions of zero std left out)."""
    before = {
        "observations": clean.observations,
        "actions": clean.actions,
        "rewards": clean.rewards,
        "next_observations": clean_next_observations(clean),
    }
    after = {
        "observations": corrupted.observations,
        "actions": corrupted.actions,
        "rewards": corrupted.rewards,
        "next_observations": corrupted.next_observations
        if corrupted.next_observations is not None
        else clean_next_observations(corrupted),
    }
    out = []
    for name in FIELDS:
        a = before[name].astype(np.float64).reshape(len(clean), -1)
        b = after[name].astype(np.float64).reshape(len(clean), -1)
        diff = np.abs(b - a)
        changed = (diff > 0).any(axis=1)
        std = np.atleast_1d(field_std(a))
        keep = std > 0
        mean = float("nan")
        if changed.any() and keep.any():
            mean = float(np.mean(diff[changed][:, keep] / std[keep]))
        out.append(FieldChange(name, float(changed.mean()), mean))
    return out


# ---- the cache ---------------------------------------------------------------------------------


def digest(data: Transitions) -> str:
    """sha256 of the clean arrays (what the corruption is a function of)."""
    h = hashlib.sha256()
    for arr in (data.observations, data.actions, data.rewards, data.terminals, data.timeouts):
        h.update(np.ascontiguousarray(arr).tobytes())
    if data.next_observations is not None:
        h.update(np.ascontiguousarray(data.next_observations).tobytes())
    return h.hexdigest()


def corruption_key(data_digest: str, spec: Any, eligible: np.ndarray) -> str:
    record = {
        "version": CORRUPTION_VERSION,
        "data": data_digest,
        "corruption": spec.to_dict(),
        "eligible": hashlib.sha256(np.packbits(eligible).tobytes()).hexdigest(),
    }
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_dir() -> pathlib.Path:

    return dataset_cache_dir() / "corrupted"


def corrupted_cached(
    data: Transitions,
    spec: Any,
    eligible: np.ndarray,
    *,
    discrete: bool,
    source: str,
) -> tuple[Transitions, dict[str, Any]]:
    """The corrupted data, from the cache when there (else made and cached); and the record
    of what was done (key, file, attacker) for the run directory."""

    data_digest = digest(data)
    key = corruption_key(data_digest, spec, eligible)
    path = cache_dir() / f"{key}.hdf5"
    record: dict[str, Any] = {
        "dataset": source,
        "corruption": spec.to_dict(),
        "key": key,
        "file": str(path),
    }
    if path.is_file():
        corrupted, meta = read_d4rl_hdf5(path, discrete=discrete)
        if meta.get("attacker"):
            record["attacker"] = meta["attacker"]
        return corrupted, record
    attacker = None
    if needs_attacker(spec.mode, spec.fields):
        attacker, record["attacker"] = trained_attacker(data, spec, data_digest, cache_dir())
    corrupted = corrupt(data, spec, eligible, attacker=attacker)
    meta = {"source": source, "corruption": spec.to_dict(), "attacker": record.get("attacker")}
    write_d4rl_hdf5(path, corrupted, meta)
    return corrupted, record
