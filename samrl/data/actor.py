"""The SAC behaviour policies of the MuJoCo datasets as plain arrays, and the ones samrl ships.

A behaviour policy is only needed to roll out data, so samrl keeps just its actor: the weights
of d3rlpy's `NormalPolicy` (an MLP encoder, a mean head and a log-std head) in an `.npz` file
that `numpy.load(allow_pickle=False)` reads, so loading one runs nothing stored in it.

Rollouts compute the actor in float64 numpy and hand the env float32 actions. torch's float32
matrix products take different kernels on different CPUs (and thread counts), and a last-bit
difference in one action sends a MuJoCo trajectory elsewhere within a few hundred steps. In
float64 two machines' kernels still differ in the last bits, but those differences almost never
reach the float32 action (about one value in 10^8-10^9 sits close enough to a rounding
boundary), so a dataset made from a shipped policy has the same bytes on every machine with
the same MuJoCo build. The sampling noise comes from numpy's seeded generator, not torch's.

`samrl/data/policies/` holds the shipped files: `<family>_<level>.npz` for the random, medium
and expert levels of hopper, halfcheetah and walker2d, and `manifest.json` with each file's
sha256 and how the policies were trained (scripts/train_behaviour_policies.py, then
scripts/export_behaviour_policies.py). A file whose sha256 differs is refused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from samrl.errors import SamrlError

SHIPPED_DIR = pathlib.Path(__file__).with_name("policies")
MANIFEST = SHIPPED_DIR / "manifest.json"
#: d3rlpy's SAC defaults (NormalPolicy's clamp of the log standard deviation).
MIN_LOGSTD, MAX_LOGSTD = -20.0, 2.0


class ShippedPolicyError(SamrlError):
    kind = "behaviour policy"


@dataclass(frozen=True, eq=False)
class Actor:
    """A squashed-Gaussian MLP actor: hidden layers with ReLU, then mean and log-std heads."""

    hidden: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weight [out, in], bias [out]), float32
    mean_head: tuple[np.ndarray, np.ndarray]
    logstd_head: tuple[np.ndarray, np.ndarray]

    @functools.cached_property
    def _float64(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every layer as (weight transposed, bias) in float64, converted once."""
        layers = [*self.hidden, self.mean_head, self.logstd_head]
        return [(np.ascontiguousarray(w.T, np.float64), b.astype(np.float64)) for w, b in layers]

    def heads(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, clamped log-std) before the tanh squash, in float64."""
        *hidden, (w_mean, b_mean), (w_logstd, b_logstd) = self._float64
        h = np.asarray(observations, np.float64)
        for weight, bias in hidden:
            h = np.maximum(h @ weight + bias, 0.0)
        return h @ w_mean + b_mean, np.clip(h @ w_logstd + b_logstd, MIN_LOGSTD, MAX_LOGSTD)

    def sample(self, observations: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """tanh(mean + std * N(0, 1)), as d3rlpy's SAC samples an action; float32."""
        mean, logstd = self.heads(observations)
        noise = rng.standard_normal(mean.shape)
        return np.tanh(mean + np.exp(logstd) * noise).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for i, (weight, bias) in enumerate(self.hidden):
            out[f"hidden{i}.weight"], out[f"hidden{i}.bias"] = weight, bias
        out["mean.weight"], out["mean.bias"] = self.mean_head
        out["logstd.weight"], out["logstd.bias"] = self.logstd_head
        return out

    def digest(self) -> str:
        """sha256 over the arrays' names, shapes and bytes: the actor's identity."""
        digest = hashlib.sha256()
        for name, array in sorted(self.arrays().items()):
            digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Actor:
        n_hidden = len([k for k in arrays if k.startswith("hidden") and k.endswith(".weight")])

        def pair(name: str) -> tuple[np.ndarray, np.ndarray]:
            return np.asarray(arrays[f"{name}.weight"]), np.asarray(arrays[f"{name}.bias"])

        return cls(
            hidden=tuple(pair(f"hidden{i}") for i in range(n_hidden)),
            mean_head=pair("mean"),
            logstd_head=pair("logstd"),
        )

    @classmethod
    def from_algo(cls, algo: Any) -> Actor:
        """The actor of a built d3rlpy SAC (its `NormalPolicy` with a vector encoder)."""
        state = {
            k: v.detach().cpu().numpy().copy() for k, v in algo.impl.policy.state_dict().items()
        }
        hidden = []
        layer_keys = sorted(
            {k.rsplit(".", 1)[0] for k in state if k.startswith("_encoder._layers.")},
            key=lambda k: int(k.split(".")[2]),
        )
        for key in layer_keys:
            hidden.append((state[f"{key}.weight"], state[f"{key}.bias"]))
        return cls(
            hidden=tuple(hidden),
            mean_head=(state["_mu.weight"], state["_mu.bias"]),
            logstd_head=(state["_logstd.weight"], state["_logstd.bias"]),
        )


def save_actor(actor: Actor, path: pathlib.Path) -> str:
    """Writes `actor` to `path` (.npz, atomically); returns the file's sha256."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **actor.arrays())
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_actor(path: pathlib.Path, sha256: str | None = None) -> Actor:
    """The actor in `path`; with `sha256`, a file with other bytes is refused."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ShippedPolicyError(f"{path}: cannot read: {exc.strerror}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ShippedPolicyError(
            f"{path}: sha256 differs from the one in {MANIFEST.name} (a damaged or replaced file)"
        )
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return Actor.from_arrays({k: arrays[k] for k in arrays.files})
    except (ValueError, KeyError, OSError) as exc:
        raise ShippedPolicyError(f"{path}: not a samrl actor file: {exc}") from None


def shipped_manifest() -> dict[str, Any]:
    """The manifest of the shipped behaviour policies ({} where none are shipped)."""
    if not MANIFEST.exists():
        return {}
    return json.loads(MANIFEST.read_text())


def shipped_entry(family: str, level: str) -> dict[str, Any] | None:
    """The manifest entry of the shipped `level` policy of `family`, or None."""
    return shipped_manifest().get("policies", {}).get(family, {}).get(level)


def load_shipped(family: str, level: str) -> Actor:
    entry = shipped_entry(family, level)
    if entry is None:
        raise ShippedPolicyError(f"samrl ships no {level} behaviour policy for {family}")
    return load_actor(SHIPPED_DIR / entry["file"], entry["sha256"])
