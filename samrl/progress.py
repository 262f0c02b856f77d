"""Progress bars: drawn on a terminal, lines in a log.

A tqdm bar redraws itself with carriage returns; written to a file (a sweep worker's log, CI
output, `2> log`) every redraw stays as text. So a bar is drawn only on a terminal; elsewhere
`step_bar` writes one line when the work starts, one per tenth done (only once the work has
taken a minute: short work stays two lines) and one when it ends. Training itself prints one
line per epoch instead (samrl.train.epoch_line).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any

from tqdm import tqdm


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def disable_unless_terminal(wanted: bool) -> bool | None:
    """tqdm's `disable` argument for a bar over an iterable: off when not wanted, else on only
    where its stream is a terminal (None: tqdm checks)."""
    return None if wanted else True


class LineProgress:
    """The part of tqdm's interface samrl's counted bars use (`n`, `update`, `close`, `with`),
    written as plain lines."""

    REPORT_AFTER_S = 60.0

    def __init__(self, total: int, desc: str, unit: str, file: IO[str]):
        self.total, self.desc, self.unit, self.file = total, desc, unit, file
        self.n = 0
        self._start = time.monotonic()
        self._tenths = 0
        self._closed = False
        self._write(f"{desc}: {total} {unit}s")

    def update(self, n: int = 1) -> None:
        self.n += n
        tenths = min(10, self.n * 10 // max(self.total, 1))
        elapsed = time.monotonic() - self._start
        if tenths > self._tenths and tenths < 10 and elapsed >= self.REPORT_AFTER_S:
            left = elapsed * (self.total - self.n) / max(self.n, 1)
            self._write(f"{self.desc}: {self.n}/{self.total} ({elapsed:.0f} s, ~{left:.0f} s left)")
        self._tenths = max(self._tenths, tenths)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            elapsed = time.monotonic() - self._start
            self._write(f"{self.desc}: {self.n}/{self.total} {self.unit}s in {elapsed:.0f} s")

    def _write(self, line: str) -> None:
        print(line, file=self.file, flush=True)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def step_bar(total: int, desc: str, unit: str, enabled: bool, file: IO[str] | None = None) -> Any:
    """A bar over `total` units of work on `file` (default stderr): tqdm on a terminal, a
    LineProgress elsewhere, a disabled tqdm when not `enabled`."""
    file = file if file is not None else sys.stderr
    if enabled and not is_terminal(file):
        return LineProgress(total, desc, unit, file)
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=file)
