"""What the command line prints, made safe for the terminal that shows it.

Every text the CLI writes on stdout or stderr goes through a :class:`SafeStream`
(:func:`safe_streams` puts one on each while ``main`` runs), which:

- escapes every control character but the newline (C0, DEL, C1), the bidirectional
  formatting characters and the line separators, so that an id or a server message
  cannot move the cursor, retitle the window, clear the screen or reorder a line;
- escapes what the stream's encoding cannot show (``PYTHONIOENCODING=ascii``, a
  Latin-9 terminal), so that printing never raises ``UnicodeEncodeError``;
- takes a closed pipe (``| head -1``) as the end of the reader: ``broken`` turns
  true, what follows is dropped, and the command stops starting ids.

The escape is JSON's (``\\u001b``, a surrogate pair beyond U+FFFF): the outcome lines
on stdout stay valid JSON, and ``jq`` gives back the very text the server sent.
Only :func:`write_controls` writes control sequences, for the progress line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Iterator
from typing import Final, TextIO

from .errors import UsageError

__all__ = [
    "OUTPUT_CLOSED",
    "SafeStream",
    "is_broken",
    "printable",
    "safe_streams",
    "write_controls",
]

OUTPUT_CLOSED: Final = (
    "standard output closed before every outcome was printed (a pipe ended); no other id "
    "was started; rerun with the same --journal to go on"
)

_UNSAFE: Final = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


@functools.lru_cache(maxsize=4096)
def _shown(char: str, encoding: str) -> str:
    if _UNSAFE.match(char):
        return _escape(char)
    try:
        char.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return _escape(char)
    return char


def printable(text: str, encoding: str = "utf-8") -> str:
    """``text`` with what a terminal would act on, or ``encoding`` cannot hold, escaped."""
    if text.isascii() and _UNSAFE.search(text) is None:
        return text
    return "".join(_shown(char, encoding) for char in text)


class SafeStream:
    """A text stream that writes :func:`printable` text, and survives a closed pipe."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.encoding: str = getattr(stream, "encoding", None) or "utf-8"
        self.broken = False

    def write(self, text: str) -> int:
        self._write(printable(text, self.encoding))
        return len(text)

    def write_controls(self, controls: str) -> None:
        """Write terminal control sequences as they are (the progress line's own)."""
        self._write(controls)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._broke()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def _write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self._stream.write(text)
        except BrokenPipeError:
            self._broke()

    def _broke(self) -> None:
        """The reader went away: drop what follows, here and at the interpreter's exit."""
        self.broken = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)


def is_broken(stream: object) -> bool:
    """True when ``stream`` is a :class:`SafeStream` whose reader went away."""
    return isinstance(stream, SafeStream) and stream.broken


def write_controls(stream: TextIO, controls: str, text: str) -> None:
    """Write ``controls`` raw, then ``text`` made printable (raw on other streams)."""
    if isinstance(stream, SafeStream):
        stream.write_controls(controls)
        stream.write(text)
    else:
        stream.write(controls + text)


@contextlib.contextmanager
def safe_streams() -> Iterator[None]:
    """Put a :class:`SafeStream` on ``sys.stdout`` and ``sys.stderr`` while the block runs.

    A closed standard output (``>&-``) is a :class:`UsageError`: the outcomes would be
    lost. A closed standard error is written to nowhere.
    """
    out, err = sys.stdout, sys.stderr
    shown_err = err if err is not None else open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    try:
        sys.stderr = SafeStream(shown_err)
        if out is None:
            raise UsageError("standard output is closed: the outcomes would be lost (> FILE)")
        sys.stdout = SafeStream(out)
        yield
    finally:
        sys.stdout, sys.stderr = out, err
        if shown_err is not err:
            shown_err.close()
