"""Capture and restore of the process-wide random number generators: the one place samrl
saves and puts back RNG state.

- `RngState`: torch's generators (CPU, and CUDA once initialised). The SAM engine replays it
  so the second pass draws the noise the first drew; output reuse compares it.
- `ProcessRngState`: python's, numpy's and torch's generators together: a checkpoint's
  `rng` entry (`as_dict`/`from_dict`), and `forked()` around work that must not move the
  training stream (evaluation, the attacker's training).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


@dataclasses.dataclass
class RngState:
    """torch's global generators: CPU, and every CUDA device once CUDA is initialised."""

    cpu: torch.Tensor
    cuda: list[torch.Tensor] | None

    @staticmethod
    def capture() -> RngState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return RngState(torch.get_rng_state(), cuda)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)

    def same_as(self, other: RngState) -> bool:
        if not torch.equal(self.cpu, other.cpu):
            return False
        if self.cuda is None or other.cuda is None:
            return self.cuda is None and other.cuda is None
        return all(torch.equal(x, y) for x, y in zip(self.cuda, other.cuda, strict=True))


@dataclasses.dataclass
class ProcessRngState:
    """Every process-wide generator a run draws from: python, numpy, torch CPU and CUDA."""

    python: Any
    numpy: Any
    torch: RngState

    @staticmethod
    def capture() -> ProcessRngState:
        return ProcessRngState(random.getstate(), np.random.get_state(), RngState.capture())

    def restore(self, *, cuda: bool = True) -> None:
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch.cpu)
        if cuda and self.torch.cuda is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self.torch.cuda)

    def as_dict(self) -> dict[str, Any]:
        """The checkpoint form: {"python", "numpy", "torch"[, "cuda"]}."""
        state: dict[str, Any] = {
            "python": self.python,
            "numpy": self.numpy,
            "torch": self.torch.cpu,
        }
        if self.torch.cuda is not None:
            state["cuda"] = self.torch.cuda
        return state

    @staticmethod
    def from_dict(state: dict[str, Any]) -> ProcessRngState:
        return ProcessRngState(
            state["python"], state["numpy"], RngState(state["torch"], state.get("cuda"))
        )


@contextlib.contextmanager
def forked(*, cuda: bool = True) -> Iterator[None]:
    """Run the body on the process's generators, then put every one back as it was (CUDA's
    too unless `cuda=False`), so the body draws nothing from the caller's streams."""
    state = ProcessRngState.capture()
    try:
        yield
    finally:
        state.restore(cuda=cuda)
