"""Stop a training run at the next step boundary when a signal asks for it.

SIGINT (Ctrl-C), SIGTERM (kill, a batch system ending the job, Slurm's requeue or preemption)
and SIGUSR2 (Slurm's warning ahead of a time limit: `sbatch --signal=USR2@90`, which submitit
sets) only set a flag; the training loop checks it after every update, writes a checkpoint of
the step it reached and returns status `interrupted`. A second SIGINT while the checkpoint is
being written stops at once (KeyboardInterrupt), for a user who really means it.

Process-wide state: signal handlers. They are installed only in the main thread (Python allows
nothing else) for the duration of the `with` block and the previous handlers are put back.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)


class StopRequest:
    """Set by a signal handler; read by the training loop between updates."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return self.signal.name if self.signal is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.signal == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now
        if self.signal is None:
            self.signal = signal.Signals(signum)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """A StopRequest that SIGINT/SIGTERM/SIGUSR2 set while the block runs (main thread only;
    elsewhere the request is never set and signals behave as before)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.signal(s, request._handle) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
