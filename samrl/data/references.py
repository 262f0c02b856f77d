"""Reference returns for normalized scores, and which gymnasium env evaluates which data."""

from __future__ import annotations

# D4RL's reference returns (d4rl/infos.py REF_MIN_SCORE / REF_MAX_SCORE; identical for all
# datasets of one environment): random policy / expert policy.
D4RL_REFERENCES: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}

# Gymnasium v5 environments with the observation/action spaces of D4RL's -v2 data.
MUJOCO_ENV_IDS: dict[str, str] = {
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
}

# Mean return of the scripted random and expert policies of samrl.data.classic (generator
# version 1) over REFERENCE_EPISODES fixed-seed episodes; tests check they still reproduce.
CLASSIC_REFERENCES: dict[str, tuple[float, float]] = {
    "pendulum": (-1262.068186352458, -148.50715677380956),
    "cartpole": (21.2, 500.0),
}


def normalized(mean_return: float, ref_min: float, ref_max: float) -> float:
    return 100.0 * (mean_return - ref_min) / (ref_max - ref_min)


def normalized_statistics(
    statistics: dict[str, float], ref_min: float | None, ref_max: float | None
) -> dict[str, float]:
    """`return_statistics` (mean, std, min, max of episode returns) in normalized-score units:
    the mean, min and max through `normalized`, the std scaled by 100 / (max - min) (a spread
    has no offset); {} without usable references."""
    if not statistics or ref_min is None or ref_max is None or ref_max == ref_min:
        return {}
    out = {k: normalized(statistics[k], ref_min, ref_max) for k in ("mean", "min", "max")}
    out["std"] = 100.0 * statistics["std"] / abs(ref_max - ref_min)
    return out
