"""Reading files that may come from someone else without running anything in them.

Run directories get shared (a collaborator's sweep, `results/` in a pull request) and cached
models get copied between machines. Python's pickle runs code named in the file, so nothing
samrl reads from such a place goes through it unrestricted:

- samrl's resume checkpoints hold only tensors, numpy arrays (encoded as a uint8 tensor of
  their bytes, their dtype and shape), numpy scalars and plain containers (`encode_state` /
  `decode_state`), and are read by `load_torch`: torch's weights-only unpickler, which builds
  tensors and plain values and refuses every other global. Checkpoints of samrl before this
  format held the numpy RNG state as a pickled numpy array; `load_torch` also allows numpy's
  array constructor for them (it builds arrays only; an object array's items still go through
  the same restricted unpickler).
- d3rlpy's `.d3` model files are a pickled dict of bytes and strings that `d3rlpy.load_learnable`
  reads with plain `pickle.load`; `load_learnable` here reads them with an unpickler that allows
  no global at all, then builds the algorithm as d3rlpy does (its config from JSON, its modules
  through d3rlpy's own `load_model`, i.e. torch's weights-only load).

A file refused here is reported as unsafe in one line (`UnsafeFileError`); nothing in it ran.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from samrl.errors import SamrlError

#: The key marking an encoded numpy array or scalar inside checkpoint state.
_NDARRAY = "__samrl_ndarray__"


class UnsafeFileError(SamrlError):
    """A file holds something a safe load refuses (a pickled object); nothing in it ran.
    `reason` says why without naming the file."""

    kind = "unsafe file"

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class StateTypeError(TypeError):
    """Checkpoint state holds a value outside what loads safely (a bug of the code saving it)."""


# ---------------------------------------------------------------- checkpoint state


def encode_state(value: Any, where: str = "state") -> Any:
    """`value` in a form torch's weights-only load reads back: tensors, numpy arrays and numpy
    scalars (not of object dtype), dicts with str or int keys, lists, tuples, str, int, float,
    bool and None (not bytes: torch's pickle protocol stores them through a global that the
    weights-only load refuses). Anything else raises StateTypeError naming its place."""
    import torch

    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.hasobject or array.dtype.fields is not None:
            raise StateTypeError(
                f"{where}: a numpy array of dtype {array.dtype} cannot be saved safely "
                "(object and structured dtypes would need pickle)"
            )
        raw = np.frombuffer(np.ascontiguousarray(array).tobytes(), dtype=np.uint8)
        return {
            _NDARRAY: torch.from_numpy(raw.copy()),  # the bytes, as a uint8 tensor
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "scalar": isinstance(value, np.generic),
        }
    if isinstance(value, dict):
        if _NDARRAY in value:
            raise StateTypeError(f"{where}: the key {_NDARRAY!r} is reserved")
        out = {}
        for key, item in value.items():
            if type(key) not in (str, int):
                raise StateTypeError(f"{where}: key {key!r} is not a str or an int")
            out[key] = encode_state(item, f"{where}.{key}")
        return out
    if type(value) in (list, tuple):
        items = [encode_state(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if type(value) is list else tuple(items)
    raise StateTypeError(
        f"{where}: a {type(value).__module__}.{type(value).__qualname__} is not checkpoint "
        "state; use tensors, numpy arrays and plain containers (dict, list, tuple, str, int, "
        "float, bool, None)"
    )


def decode_state(value: Any) -> Any:
    """The inverse of `encode_state` (arrays come back writable, with their dtype and shape)."""
    if isinstance(value, dict):
        if _NDARRAY in value:
            raw = value[_NDARRAY].numpy().tobytes()
            array = np.frombuffer(raw, dtype=np.dtype(value["dtype"]))
            array = array.reshape(value["shape"]).copy()
            return array[()] if value.get("scalar") else array
        return {key: decode_state(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_state(item) for item in value]
    if isinstance(value, tuple):
        return tuple(decode_state(item) for item in value)
    return value


def _legacy_numpy_globals() -> list[Any]:
    """What samrl's older checkpoints pickled: the numpy RNG state's uint32 key array."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_torch(path: Path | str) -> Any:
    """torch.load with the weights-only unpickler; UnsafeFileError when the file holds a
    pickled object it refuses (other damage raises as torch raises it)."""
    import torch

    try:
        with torch.serialization.safe_globals(_legacy_numpy_globals()):
            return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(path, refusal_reason(exc)) from None


def refusal_reason(exc: BaseException) -> str:
    """torch's long weights-only refusal as one short reason naming the refused global."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    named = f" ({found.group(1)})" if found else ""
    return f"it holds a pickled object{named} that a safe load refuses; nothing in it was run"


# ---------------------------------------------------------------- d3rlpy model files


class _PlainUnpickler(pickle.Unpickler):
    """Plain values only (dict, list, tuple, str, bytes, numbers): no global is allowed."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def load_learnable(path: Path | str, device: Any = None) -> Any:
    """`d3rlpy.load_learnable(path, device)` without unpickling objects: a `.d3` file is a
    pickled {"torch": bytes, "config": JSON str, "version": str} (d3rlpy.base.dump_learnable).

    UnsafeFileError when the file holds anything else; d3rlpy's own errors otherwise.
    """
    from d3rlpy.base import LearnableConfigWithShape

    data = Path(path).read_bytes()
    try:
        obj = _PlainUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(
            path, f"not a d3rlpy model file that loads safely ({exc}); nothing in it was run"
        ) from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise UnsafeFileError(path, f"not a readable d3rlpy model file ({exc})") from None
    if not (
        isinstance(obj, dict)
        and isinstance(obj.get("torch"), bytes)
        and isinstance(obj.get("config"), str)
    ):
        raise UnsafeFileError(path, "not a d3rlpy model file (no config and torch state)")
    check_torch_bytes(path, obj["torch"])
    config = LearnableConfigWithShape.deserialize(obj["config"])
    algo = config.create(device)
    assert algo.impl is not None
    algo.impl.load_model(io.BytesIO(obj["torch"]))
    return algo


def check_torch_bytes(path: Path | str, data: bytes) -> None:
    """UnsafeFileError unless torch's weights-only load reads `data` (what d3rlpy's load_model
    is about to read: its torch.load leaves weights_only to torch's default, which the
    environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns off)."""
    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(path, refusal_reason(exc)) from None
