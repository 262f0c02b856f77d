"""Progress bars: drawn on a terminal, lines in a log.

A tqdm bar redraws itself with carriage returns; written to a file (a sweep worker's log, CI
output, `2> log`) every redraw stays as text. So a bar is drawn only on a terminal; elsewhere
`step_bar` writes one line when the work starts, one per tenth done (only once the work has
taken a minute: short work stays two lines) and one when it ends; `byte_bar` (downloads)
writes only the lines per tenth and the end, and only for a download that takes a minute.
Training itself prints one line per epoch instead (samrl.run.train.epoch_line).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
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
    written as plain lines.

    `silent_unless_long`: no start line, and an end line only when a line per tenth was
    written (a download: its caller prints its own summary, and a failure stays one line)."""

    REPORT_AFTER_S = 60.0

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        file: IO[str],
        *,
        initial: int = 0,
        amount: Callable[[int], str] = str,
        silent_unless_long: bool = False,
    ):
        self.total, self.desc, self.unit, self.file = total, desc, unit, file
        self.n = initial
        self._amount = amount
        self._start = time.monotonic()
        self._tenths = self._tenth(initial)
        self._closed = False
        self._reported = not silent_unless_long
        if self._reported:
            self._write(f"{desc}: {amount(total)} {unit}s")

    def _tenth(self, n: int) -> int:
        return min(10, n * 10 // max(self.total, 1))

    def update(self, n: int = 1) -> None:
        self.n += n
        tenths = self._tenth(self.n)
        elapsed = time.monotonic() - self._start
        if tenths > self._tenths and tenths < 10 and elapsed >= self.REPORT_AFTER_S:
            self._reported = True
            left = elapsed * (self.total - self.n) / max(self.n, 1)
            done = f"{self._amount(self.n)}/{self._amount(self.total)}"
            self._write(f"{self.desc}: {done} ({elapsed:.0f} s, ~{left:.0f} s left)")
        self._tenths = max(self._tenths, tenths)

    def close(self) -> None:
        if not self._closed and self._reported:
            elapsed = time.monotonic() - self._start
            done = f"{self._amount(self.n)}/{self._amount(self.total)}"
            unit = f" {self.unit}s" if self._amount is str else ""  # a formatted amount has it
            self._write(f"{self.desc}: {done}{unit} in {elapsed:.0f} s")
        self._closed = True

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


def byte_bar(total: int | None, desc: str, enabled: bool, initial: int = 0) -> Any:
    """A download's bar on stderr: tqdm in bytes on a terminal (cleared when done); in a log,
    a line per tenth once the download has taken a minute (nothing for a short one, and
    nothing per tenth when the server sent no length); a disabled tqdm when not `enabled`."""
    if enabled and not is_terminal(sys.stderr) and total is not None:
        size = lambda n: tqdm.format_sizeof(n, "B", 1024)  # noqa: E731
        return LineProgress(
            total, desc, "byte", sys.stderr, initial=initial, amount=size, silent_unless_long=True
        )
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled or not is_terminal(sys.stderr),
        leave=False,
    )


def step_bar(total: int, desc: str, unit: str, enabled: bool, file: IO[str] | None = None) -> Any:
    """A bar over `total` units of work on `file` (default stderr): tqdm on a terminal, a
    LineProgress elsewhere, a disabled tqdm when not `enabled`."""
    file = file if file is not None else sys.stderr
    if enabled and not is_terminal(file):
        return LineProgress(total, desc, unit, file)
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=file)
