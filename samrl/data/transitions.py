"""Flat transition arrays (D4RL's layout) and the checks every source goes through."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samrl.errors import DatasetError

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


@dataclass
class Transitions:
    """One row per environment step; episodes end where terminals or timeouts is set."""

    observations: np.ndarray  # (N, obs_dim) float32
    actions: np.ndarray  # (N, act_dim) float32, or (N,) int64 for discrete actions
    rewards: np.ndarray  # (N,) float32
    terminals: np.ndarray  # (N,) bool: the environment terminated (gymnasium `terminated`)
    timeouts: np.ndarray  # (N,) bool: the episode was cut (gymnasium `truncated`, or data end)
    next_observations: np.ndarray | None = None  # (N, obs_dim); optional in users' files
    notes: list[str] = field(default_factory=list)  # what validation had to repair

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def episode_ends(self) -> np.ndarray:
        """Index one past the last step of each episode."""
        return np.flatnonzero(self.terminals | self.timeouts) + 1

    def episode_returns(self) -> np.ndarray:
        ends = self.episode_ends
        starts = np.concatenate([[0], ends[:-1]])
        sums = np.add.reduceat(self.rewards.astype(np.float64), starts) if len(ends) else []
        return np.asarray(sums, dtype=np.float64)

    def select(self, rows: np.ndarray) -> Transitions:
        """The rows where the boolean mask `rows` is set (whole episodes, e.g. a split)."""
        return Transitions(
            observations=self.observations[rows],
            actions=self.actions[rows],
            rewards=self.rewards[rows],
            terminals=self.terminals[rows],
            timeouts=self.timeouts[rows],
            next_observations=None
            if self.next_observations is None
            else self.next_observations[rows],
            notes=list(self.notes),
        )

    def head(self, size: int) -> Transitions:
        """The first `size` steps; the cut episode ends with a timeout (D4RL does the same)."""
        if size >= len(self):
            return self
        out = Transitions(
            observations=self.observations[:size],
            actions=self.actions[:size],
            rewards=self.rewards[:size],
            terminals=self.terminals[:size].copy(),
            timeouts=self.timeouts[:size].copy(),
            next_observations=None
            if self.next_observations is None
            else self.next_observations[:size],
            notes=list(self.notes),
        )
        if not out.terminals[-1]:
            out.timeouts[-1] = True
        return out


def concatenate(parts: list[Transitions]) -> Transitions:
    has_next = all(p.next_observations is not None for p in parts)
    return Transitions(
        observations=np.concatenate([p.observations for p in parts]),
        actions=np.concatenate([p.actions for p in parts]),
        rewards=np.concatenate([p.rewards for p in parts]),
        terminals=np.concatenate([p.terminals for p in parts]),
        timeouts=np.concatenate([p.timeouts for p in parts]),
        next_observations=np.concatenate([p.next_observations for p in parts])  # type: ignore[misc]
        if has_next
        else None,
    )


def validated(
    raw: dict[str, np.ndarray], source: str, *, discrete: bool | None = None
) -> Transitions:
    """Check shapes, lengths and finiteness of raw arrays and normalise dtypes.

    `source` names the file (and group) in every message. Repairs that do not change the
    data's meaning are made and recorded in `notes`: a step flagged both terminal and timeout
    becomes terminal (d3rlpy 2.8.1 rejects the overlap), and a final step without an episode
    end becomes a timeout (otherwise d3rlpy silently drops the last episode).
    """
    arrays = _shaped_arrays(raw, source)
    actions, discrete = _actions(arrays["actions"], source, discrete)
    _check_numbers(arrays, actions, discrete, source)

    terminals, timeouts, notes = _episode_ends(arrays["terminals"], arrays["timeouts"])
    next_obs = arrays.get("next_observations")
    # copy=False: float32 data (D4RL's) are kept, not copied (a second copy of a 2M-step
    # dataset in memory at once)
    return Transitions(
        observations=arrays["observations"].astype(np.float32, copy=False),
        actions=actions,
        rewards=arrays["rewards"].astype(np.float32, copy=False),
        terminals=terminals,
        timeouts=timeouts,
        next_observations=None if next_obs is None else next_obs.astype(np.float32, copy=False),
        notes=notes,
    )


def _shaped_arrays(raw: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The raw arrays as numpy arrays, checked for presence, shape and row count: observations
    (steps, dim), rewards / terminals / timeouts 1-D (a (steps, 1) column flattened; timeouts
    all False when absent), next_observations (when given) shaped as observations."""
    missing = [k for k in REQUIRED_KEYS if k not in raw and k != "timeouts"]
    if missing:
        raise DatasetError(f"{source}: missing dataset key(s) {', '.join(missing)}")
    obs = np.asarray(raw["observations"])
    n = obs.shape[0] if obs.ndim else 0
    if obs.ndim != 2:
        raise DatasetError(
            f"{source}: 'observations' must be 2-D (steps, dim), got shape {obs.shape}"
        )
    if n == 0:
        raise DatasetError(f"{source}: the dataset is empty")
    arrays = {k: np.asarray(raw[k]) for k in REQUIRED_KEYS if k in raw}
    if "timeouts" not in arrays:
        arrays["timeouts"] = np.zeros(n, dtype=bool)
    if raw.get("next_observations") is not None:
        arrays["next_observations"] = np.asarray(raw["next_observations"])
    for key, arr in arrays.items():
        if arr.ndim == 0 or arr.shape[0] != n:
            got = arr.shape[0] if arr.ndim else "a scalar"
            raise DatasetError(f"{source}: '{key}' has {got} rows but 'observations' has {n}")
    for key in ("rewards", "terminals", "timeouts"):
        arr = arrays[key]
        if arr.ndim == 2 and arr.shape[1] == 1:
            arrays[key] = arr = arr[:, 0]
        if arr.ndim != 1:
            raise DatasetError(f"{source}: '{key}' must be 1-D, got shape {arr.shape}")
    if "next_observations" in arrays and arrays["next_observations"].shape != obs.shape:
        raise DatasetError(
            f"{source}: 'next_observations' has shape {arrays['next_observations'].shape}, "
            f"'observations' has {obs.shape}"
        )
    return arrays


def _check_numbers(
    arrays: dict[str, np.ndarray], actions: np.ndarray, discrete: bool, source: str
) -> None:
    """DatasetError for observations, rewards or next observations that are not numbers or not
    finite, and for continuous actions that are not finite."""
    for key in ("observations", "rewards", "next_observations"):
        if key in arrays:
            if not np.issubdtype(arrays[key].dtype, np.number):
                raise DatasetError(f"{source}: '{key}' is not numeric ({arrays[key].dtype})")
            if not np.all(np.isfinite(arrays[key])):
                raise DatasetError(f"{source}: '{key}' contains NaN or inf")
    if not discrete and not np.all(np.isfinite(actions)):
        raise DatasetError(f"{source}: 'actions' contains NaN or inf")


def _actions(actions: np.ndarray, source: str, discrete: bool | None) -> tuple[np.ndarray, bool]:
    """Actions checked and typed: discrete ones (given, or integers in one column) as int64
    indices >= 0, continuous ones as float32 (steps, dim); and whether they are discrete."""
    if actions.ndim == 2 and actions.shape[1] == 1 and discrete:
        actions = actions[:, 0]
    if discrete is None:
        discrete = np.issubdtype(actions.dtype, np.integer) and actions.ndim == 1
    if discrete:
        if actions.ndim != 1:
            raise DatasetError(
                f"{source}: discrete 'actions' must be 1-D, got shape {actions.shape}"
            )
        if np.issubdtype(actions.dtype, np.floating) and not np.all(np.isfinite(actions)):
            raise DatasetError(f"{source}: 'actions' contains NaN or inf")
        if np.any(actions != np.round(actions)) or np.any(actions < 0):
            raise DatasetError(f"{source}: discrete 'actions' must be non-negative integers")
        return actions.astype(np.int64), True
    if actions.ndim == 1:
        actions = actions[:, None]
    if actions.ndim != 2:
        raise DatasetError(
            f"{source}: 'actions' must be 2-D (steps, dim), got shape {actions.shape}"
        )
    return actions.astype(np.float32, copy=False), False


def _episode_ends(
    terminals: np.ndarray, timeouts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The end flags as bool, repaired as `validated` says, with a note per repair."""
    terminals = terminals.astype(bool)
    timeouts = timeouts.astype(bool)
    notes: list[str] = []
    both = terminals & timeouts
    if both.any():
        timeouts = timeouts & ~terminals
        notes.append(
            f"{int(both.sum())} step(s) flagged both terminal and timeout were kept as terminal"
        )
    if not (terminals[-1] or timeouts[-1]):
        timeouts = timeouts.copy()
        timeouts[-1] = True
        notes.append("the last episode had no end flag and was marked as a timeout")
    return terminals, timeouts, notes


def return_statistics(returns: np.ndarray) -> dict[str, float]:
    if len(returns) == 0:
        return {}
    return {
        "mean": float(np.mean(returns)),
        "std": float(np.std(returns)),
        "min": float(np.min(returns)),
        "max": float(np.max(returns)),
    }
