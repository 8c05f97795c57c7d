"""The command line's progress line on a terminal: counts, rate, time left.

One line on stderr, redrawn in place at most ten times a second. When stdout is
the same terminal, the line is cleared before each outcome line is written and
drawn again after it, so the two never mix; the SDK's log lines (retry warnings)
are printed above it the same way. The rate and the time left count only the
outcomes that cost a request: a message skipped as too late takes no time. Nothing
is drawn when stderr is not a terminal (the caller checks). The line is cleared
when the display closes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Self, TextIO

from .. import BatchProgress
from .terminal import write_controls

__all__ = ["ProgressDisplay", "duration", "open_display", "progress_text"]

_REDRAW_SECONDS = 0.1
_CLEAR = "\r\x1b[2K"


def duration(seconds: float) -> str:
    """``2h 05m``, ``3m 07s``, ``42s``: a duration for the progress line."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def progress_text(
    progress: BatchProgress, total: int | None, elapsed: float, *, paced: int | None = None
) -> str:
    """The progress line for these counts, ``elapsed`` seconds after the start.

    ``paced`` is how many of the outcomes cost a request (default: all): the rate
    and the time left are measured on those alone.
    """
    done = progress.done
    parts = [f"{done}/{total}" if total is not None else f"{done}"]
    paced = done if paced is None else paced
    rate = paced / elapsed if elapsed > 0 else 0.0
    parts.append(f"{rate:.1f}/s")
    if total is not None and rate > 0:
        parts.append(f"{duration(max(total - done, 0) / rate)} left")
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
        self._paced: int | None = None
        self._shares_terminal = out is not None and out.isatty()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._clear()

    def __call__(self, progress: BatchProgress, *, paced: int | None = None) -> None:
        """Show ``progress``, unless the line was drawn less than a tenth of a second ago;
        ``paced``: how many of its outcomes this display measures the rate on (default:
        all)."""
        self._progress = progress
        self._paced = paced
        now = self._clock()
        if self._due(now):
            self._draw(now)

    def line(
        self, text: str, progress: BatchProgress | None = None, *, paced: int | None = None
    ) -> None:
        """Write one outcome line on stdout without mixing it with the progress line,
        and show ``progress`` (the counts with that outcome) when given. ``paced``:
        how many of those outcomes cost a request (default: all)."""
        assert self._out is not None
        if progress is not None:
            self._progress = progress
        self._paced = paced
        if self._shares_terminal:
            self._clear()
        print(text, file=self._out, flush=True)
        now = self._clock()
        if self._shares_terminal or self._due(now):
            self._draw(now)

    def note(self, text: str) -> None:
        """Write ``text`` on its own line above the progress line, then redraw it."""
        had_line = bool(self._shown)
        self._clear()
        self._err.write(text + "\n")
        self._err.flush()
        if had_line:
            self._draw(self._clock())

    def _due(self, now: float) -> bool:
        return now - self._drawn_at >= _REDRAW_SECONDS or self._progress.done == self._total

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self._err.fileno()).columns
        except (OSError, ValueError):
            return 80

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        text = progress_text(self._progress, self._total, now - self._started, paced=self._paced)
        self._shown = text[: self._width() - 1]
        write_controls(self._err, _CLEAR, self._shown)
        self._err.flush()

    def _clear(self) -> None:
        if self._shown:
            write_controls(self._err, _CLEAR, "")
            self._err.flush()
            self._shown = ""


class _LogAbove(logging.Handler):
    """The SDK's log records, each printed above the progress line."""

    def __init__(self, display: ProgressDisplay) -> None:
        super().__init__(logging.WARNING)
        self._display = display

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._display.note(self.format(record))
        except Exception:
            self.handleError(record)


def open_display(
    stack: ExitStack, out: TextIO, err: TextIO, total: int | None
) -> ProgressDisplay | None:
    """The progress line on ``err``, closed with ``stack``; None when ``err`` is no terminal.

    While it is open, the ``mailpartner_async`` logger's warnings go above it.
    """
    if not err.isatty():
        return None
    display = stack.enter_context(ProgressDisplay(err, total, out))
    handler = _LogAbove(display)
    logger = logging.getLogger("mailpartner_async")
    logger.addHandler(handler)
    stack.callback(logger.removeHandler, handler)
    return display
