"""What the raw head of an answer says about its framing, read before any HTTP parser.

The transports must agree on a ``Content-Length`` sent more than once. aiohttp's
parser refuses any repeat; h11 (under httpx and httpx2) merges a repeat of the same
value, or a list of it (``7, 7``), into one header before anyone can see it. RFC 9110
(section 8.6) lets a recipient refuse such an answer, so every transport refuses it:
the SDK's own streams feed the bytes they read to a :class:`HeadScan`, which finds
the repeat in the head as the server sent it.

They must agree on a long head too: each library has its own limit, so the SDK's
(:data:`OVERSIZED_HEAD`) comes first on every transport, from the same line lengths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "MAX_FIELD_LINE",
    "OVERSIZED_HEAD",
    "REPEATED_LENGTH",
    "HeadScan",
    "head_refusal",
    "oversized_fields",
    "repeats_content_length",
]

REPEATED_LENGTH: Final = "Content-Length sent more than once (RFC 9110, section 8.6)"
"""Why an answer whose ``Content-Length`` comes twice, or as a list, is refused."""

# The end of a head: a blank line, bare LF tolerated as h11 tolerates it.
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
_LINE_END: Final = re.compile(rb"\r?\n")
# The status line of an interim answer, which a final one follows (not 101: after it,
# the connection speaks another protocol).
_INTERIM: Final = re.compile(rb"HTTP/1\.[01] 1(?!01)\d\d\b")
MAX_FIELD_LINE: Final = 16 * 1024
"""The longest header line (``Name: value``) taken, in bytes."""
_MAX_FIELD_LINES: Final = 64 * 1024
OVERSIZED_HEAD: Final = "a header line over 16 KiB, or header lines over 64 KiB in all"
"""Why an answer with too long a head is refused, on every transport alike: a limit
of each HTTP library's would otherwise decide (h11's is 100 KiB for the whole head,
aiohttp's 8 KiB a line), and the transports would disagree."""
# Past this with no blank line, the head is over the limit whatever its lines.
_MAX_HEAD: Final = _MAX_FIELD_LINES + MAX_FIELD_LINE


def oversized_fields(lengths: Iterable[int]) -> bool:
    """Whether header lines of these lengths are over the limit (:data:`OVERSIZED_HEAD`)."""
    total = 0
    for length in lengths:
        if length > MAX_FIELD_LINE:
            return True
        total += length
    return total > _MAX_FIELD_LINES


def head_refusal(head: bytes) -> str:
    """Why a complete head (status line and field lines, no blank line) is refused,
    or ``""``: its ``Content-Length`` repeated, or its lines over the limit."""
    if repeats_content_length(head):
        return REPEATED_LENGTH
    if oversized_fields(len(line) for line in _LINE_END.split(head)[1:]):
        return OVERSIZED_HEAD
    return ""


def repeats_content_length(head: bytes) -> bool:
    """Whether the head (status line and field lines) has more than one
    ``Content-Length`` field line, or one whose value is a list.

    A field name is matched as parsers read it: the whole text before the colon, no
    space (a line that starts with one continues the previous field, obs-fold).
    """
    seen = 0
    for line in _LINE_END.split(head)[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.lower() == b"content-length":
            seen += 1 + value.count(b",")
    return seen > 1


class HeadScan:
    """The head of one answer, fed the bytes read after a request went out, chunk by
    chunk: :attr:`refused` says why the head is refused once it is complete."""

    __slots__ = ("_head", "done", "refused")

    def __init__(self) -> None:
        self._head = bytearray()
        self.done = False
        self.refused = ""

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        # Search from a little before the new bytes: the blank line may straddle them.
        start = max(len(self._head) - 3, 0)
        self._head += data
        while (end := _HEAD_END.search(self._head, start)) is not None:
            head = bytes(self._head[: end.start()])
            if not _INTERIM.match(head):
                self.refused = head_refusal(head)
                self._close()
                return
            # An interim answer (103 Early Hints, say): the parser skips it, and the
            # final answer's head follows; that is the one judged.
            del self._head[: end.end()]
            start = 0
        if len(self._head) > _MAX_HEAD:
            self.refused = OVERSIZED_HEAD
            self._close()

    def _close(self) -> None:
        self.done = True
        self._head = bytearray()
