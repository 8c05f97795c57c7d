"""The command line's progress line on a terminal: counts, rate, time left.

One line on stderr, redrawn in place at most ten times a second. When stdout is
the same terminal, the line is cleared before each outcome line is written and
drawn again after it, so the two never mix. Nothing is drawn when stderr is not a
terminal (the caller checks). The line is cleared when the display closes.
"""

from __future__ import annotations

import os
import time
from typing import Self, TextIO

from ._models import BatchProgress

__all__ = ["ProgressDisplay", "progress_text"]

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
    """Draws :func:`progress_text` on ``err``; write outcome lines through :meth:`line`."""

    def __init__(self, err: TextIO, total: int | None, out: TextIO | None = None) -> None:
        self._err = err
        self._out = out
        self._total = total
        self._started = time.monotonic()
        self._drawn_at = -1.0
        self._shown = ""
        self._progress = BatchProgress()
        self._shares_terminal = out is not None and out.isatty()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._clear()

    def __call__(self, progress: BatchProgress) -> None:
        self._progress = progress
        now = time.monotonic()
        if now - self._drawn_at >= _REDRAW_SECONDS or progress.done == self._total:
            self._draw(now)

    def line(self, text: str) -> None:
        """Write one outcome line on stdout without mixing it with the progress line."""
        assert self._out is not None
        if self._shares_terminal:
            self._clear()
        print(text, file=self._out, flush=True)
        if self._shares_terminal:
            self._draw(time.monotonic())

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self._err.fileno()).columns
        except (OSError, ValueError):
            return 80

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        text = progress_text(self._progress, self._total, now - self._started)
        self._shown = text[: self._width() - 1]
        self._err.write(_CLEAR + self._shown)
        self._err.flush()

    def _clear(self) -> None:
        if self._shown:
            self._err.write(_CLEAR)
            self._err.flush()
            self._shown = ""
