"""RIQL's adversarial attack on observations, actions and next observations.

RIQL (attack.py) loads a pretrained 10-critic EDAC and, for each corrupted row, moves a
perturbation `para` (in units of the field's std) to minimise the ensemble's mean Q:
Q(s + d, a) for observations, Q(s, a + d) for actions, Q(s' + d, pi(s' + d)) for next
observations. `para` starts at U(-eps, eps), takes 100 Adam steps of lr 0.01 * eps and is clamped
to [-eps, eps] after each. RIQL builds a new Adam at every step, so every step is Adam's first
(lr * g / (|g| + 1e-8), about lr * sign(g)); samrl does the same.

samrl trains the attacker itself, with d3rlpy (SAC or TD3 with `n_critics` critics, standard
observation and min-max action scaling fitted on the clean data), and caches it beside the
corrupted data (`corrupted/attacker_<hash>.d3`, d3rlpy's own format; `.json` says what it is).
The attack is vectorised over all rows; each row's loss is its own mean Q (the loss summed over
rows), so its gradient does not depend on how rows are chunked (RIQL averages over 10 chunks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samrl.data.transitions import Transitions
from samrl.rng import forked as forked_rng
from samrl.rundir import atomic_path, atomic_write
from samrl.safeload import load_learnable

ATTACKER_VERSION = 1
#: The attack's Adam learning rate is ATTACK_LR * eps (RIQL's step_size 0.01).
ATTACK_LR = 0.01
_CHUNK = 65536  # rows per forward pass (memory only: results do not depend on it)


@contextlib.contextmanager
def _scoped_rng(seed: int) -> Iterator[None]:
    """Seed python/numpy/torch's global generators for d3rlpy's training and put the caller's
    states back afterwards (process-wide state, restored on exit; CUDA's is left as the
    attacker's training leaves it, as before)."""
    with forked_rng(cuda=False):
        import d3rlpy

        d3rlpy.seed(seed)
        yield


def attacker_key(data_digest: str, spec: Any) -> str:
    record = {
        "version": ATTACKER_VERSION,
        "data": data_digest,
        "attacker": spec.attacker.to_dict(),
        "seed": spec.seed,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def build_attacker_config(settings: Any, data: Transitions) -> Any:
    import d3rlpy
    from d3rlpy.models.encoders import VectorEncoderFactory
    from d3rlpy.preprocessing import MinMaxActionScaler, StandardObservationScaler

    encoder = VectorEncoderFactory(hidden_units=[int(u) for u in settings.hidden_units])
    obs = data.observations.astype(np.float64)
    common = {
        "actor_encoder_factory": encoder,
        "critic_encoder_factory": encoder,
        "n_critics": int(settings.n_critics),
        "batch_size": int(settings.batch_size),
        "observation_scaler": StandardObservationScaler(
            mean=obs.mean(axis=0).astype(np.float32), std=obs.std(axis=0).astype(np.float32)
        ),
        "action_scaler": MinMaxActionScaler(
            minimum=data.actions.min(axis=0), maximum=data.actions.max(axis=0)
        ),
    }
    if settings.algo == "td3":
        return d3rlpy.algos.TD3Config(**common)
    return d3rlpy.algos.SACConfig(**common)


def trained_attacker(
    data: Transitions, spec: Any, data_digest: str, directory: Path
) -> tuple[Any, dict[str, Any]]:
    """The attacker of `spec.attacker` trained on the clean `data`, from the cache when there;
    and its record (algorithm, critics, steps, file) for the run directory."""
    import d3rlpy
    from d3rlpy.constants import ActionSpace
    from d3rlpy.dataset import MDPDataset
    from d3rlpy.logging import NoopAdapterFactory

    settings = spec.attacker
    key = attacker_key(data_digest, spec)
    path = directory / f"attacker_{key}.d3"
    record = {
        "algo": settings.algo,
        "n_critics": int(settings.n_critics),
        "n_steps": int(settings.n_steps),
        "hidden_units": [int(u) for u in settings.hidden_units],
        "batch_size": int(settings.batch_size),
        "seed": int(spec.seed),
        "trained_on": "the clean dataset (all episodes)",
        "d3rlpy": d3rlpy.__version__,
        "file": str(path),
    }
    if path.is_file():  # a cache may be copied between machines: loaded unpickling nothing
        return load_learnable(path, device="cpu"), record
    dataset = MDPDataset(
        observations=data.observations,
        actions=data.actions,
        rewards=data.rewards,
        terminals=data.terminals.astype(np.float32),
        timeouts=data.timeouts.astype(np.float32),
        action_space=ActionSpace.CONTINUOUS,
        action_size=int(data.actions.shape[1]),
    )
    algo = build_attacker_config(settings, data).create(device="cpu")
    with _scoped_rng(int(spec.seed)):
        algo.fit(
            dataset,
            n_steps=int(settings.n_steps),
            n_steps_per_epoch=min(int(settings.n_steps), 1000),
            logger_adapter=NoopAdapterFactory(),
            show_progress=False,
            save_interval=10**9,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        algo.save(str(temporary))
    atomic_write(path.with_suffix(".json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
    return algo, record


def mean_q(attacker: Any, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Per row: the mean over the attacker's critics of Q(s, a), raw (unscaled) inputs."""
    x = attacker.observation_scaler.transform(observations)
    a = attacker.action_scaler.transform(actions)
    values = [q(x, a).q_value for q in attacker.impl.q_function]
    return torch.stack(values, dim=0).mean(dim=0)[:, 0]


def policy_action(attacker: Any, observations: torch.Tensor) -> torch.Tensor:
    """The attacker's deterministic action in raw units, differentiable in the observation."""
    x = attacker.observation_scaler.transform(observations)
    scaled = attacker.impl.policy(x).squashed_mu
    return attacker.action_scaler.reverse_transform(scaled)


def attack_loss(
    attacker: Any,
    field: str,
    delta: torch.Tensor,
    obs: torch.Tensor,
    act: torch.Tensor,
    next_obs: torch.Tensor,
) -> torch.Tensor:
    """Per row: the attacker's mean Q at the perturbed transition (what the attack lowers)."""
    if field == "observations":
        return mean_q(attacker, obs + delta, act)
    if field == "actions":
        return mean_q(attacker, obs, act + delta)
    moved = next_obs + delta
    return mean_q(attacker, moved, policy_action(attacker, moved))


def attack(
    attacker: Any,
    field: str,
    observations: np.ndarray,
    actions: np.ndarray,
    next_observations: np.ndarray,
    *,
    start: np.ndarray,
    std: np.ndarray,
    eps: float,
    steps: int,
) -> np.ndarray:
    """The perturbation (raw units, float64) of each row of `field`: `start` (in std units,
    within [-eps, eps]) moved by `steps` fresh-Adam steps of lr ATTACK_LR * eps down the
    attacker's mean Q, clamped to [-eps, eps] after each, times std."""
    for module in (attacker.impl.q_function, attacker.impl.policy):
        module.requires_grad_(False)
        module.eval()
    std_t = torch.as_tensor(std, dtype=torch.float32)
    out = np.empty_like(start, dtype=np.float64)
    for lo in range(0, len(start), _CHUNK):
        hi = min(lo + _CHUNK, len(start))
        obs = torch.as_tensor(observations[lo:hi], dtype=torch.float32)
        act = torch.as_tensor(actions[lo:hi], dtype=torch.float32)
        nxt = torch.as_tensor(next_observations[lo:hi], dtype=torch.float32)
        para = torch.as_tensor(start[lo:hi], dtype=torch.float32)
        for _ in range(steps):
            param = torch.nn.Parameter(para.clone())
            optimizer = torch.optim.Adam([param], lr=ATTACK_LR * eps)
            with torch.enable_grad():
                loss = attack_loss(attacker, field, param * std_t, obs, act, nxt).sum()
                optimizer.zero_grad()
                loss.backward()
            optimizer.step()
            para = torch.clamp(param.detach(), -eps, eps)
        out[lo:hi] = (para * std_t).double().numpy()
    return out
