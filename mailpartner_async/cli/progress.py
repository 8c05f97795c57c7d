"""The command line's progress line on a terminal: counts, rate, time left.

One line on stderr, redrawn in place at most ten times a second. When stdout is
the same terminal, the line is cleared before each outcome line is written and
drawn again after it, so the two never mix. Nothing is drawn when stderr is not a
terminal (the caller checks). The line is cleared when the display closes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Self, TextIO

from .. import BatchProgress
from .terminal import write_controls

__all__ = ["ProgressDisplay", "open_display", "progress_text"]

_REDRAW_SECONDS = 0.1
_CLEAR = "\r\x1b[2K"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def progress_text(progress: BatchProgress, total: int | None, elapsed: float) -> str:
    """The progress line for these counts, ``elapsed`` seconds after the start."""
    done = progress.done
    parts = [f"{done}/{total}" if total is not None else f"{done}"]
    rate = done / elapsed if elapsed > 0 else 0.0
    parts.append(f"{rate:.1f}/s")
    if total is not None and rate > 0:
        parts.append(f"{_duration(max(total - done, 0) / rate)} left")
    parts.append(f"{progress.cancelled + progress.already_cancelled} cancelled")
    parts.append(f"{progress.too_late} too late")
    failed = progress.failed + progress.not_found + progress.already_sent
    parts.append(f"{failed} failed")
    return "cancelling " + " · ".join(parts)


class ProgressDisplay:
    """Draws :func:`progress_text` on ``err``; write outcome lines through :meth:`line`.

    ``clock`` gives the seconds the rate and the time left are measured in (a test
    gives its own).
    """

    def __init__(
        self,
        err: TextIO,
        total: int | None,
        out: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._err = err
        self._out = out
        self._total = total
        self._clock = clock
        self._started = clock()
        self._drawn_at = -math.inf
        self._shown = ""
        self._progress = BatchProgress()
        self._shares_terminal = out is not None and out.isatty()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._clear()

    def __call__(self, progress: BatchProgress) -> None:
        """Show ``progress``, unless the line was drawn less than a tenth of a second ago."""
        self._progress = progress
        now = self._clock()
        if self._due(now):
            self._draw(now)

    def line(self, text: str, progress: BatchProgress | None = None) -> None:
        """Write one outcome line on stdout without mixing it with the progress line,
        and show ``progress`` (the counts with that outcome) when given."""
        assert self._out is not None
        if progress is not None:
            self._progress = progress
        if self._shares_terminal:
            self._clear()
        print(text, file=self._out, flush=True)
        now = self._clock()
        if self._shares_terminal or self._due(now):
            self._draw(now)

    def _due(self, now: float) -> bool:
        return now - self._drawn_at >= _REDRAW_SECONDS or self._progress.done == self._total

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self._err.fileno()).columns
        except (OSError, ValueError):
            return 80

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        text = progress_text(self._progress, self._total, now - self._started)
        self._shown = text[: self._width() - 1]
        write_controls(self._err, _CLEAR, self._shown)
        self._err.flush()

    def _clear(self) -> None:
        if self._shown:
            write_controls(self._err, _CLEAR, "")
            self._err.flush()
            self._shown = ""


def open_display(
    stack: ExitStack, out: TextIO, err: TextIO, total: int | None
) -> ProgressDisplay | None:
    """The progress line on ``err``, closed with ``stack``; None when ``err`` is no terminal."""
    if not err.isatty():
        return None
    return stack.enter_context(ProgressDisplay(err, total, out))
