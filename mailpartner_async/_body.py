"""Sans-I/O body decoding: ``Content-Encoding`` undone, with a cap on the decoded size.

Transports hand the bytes they read, as they come, to a :class:`BodyDecoder`; it
inflates gzip and deflate itself, never producing more than ``limit + 1`` bytes, so
61 KB on the wire that would inflate to 60 MB costs at most the cap in memory. An
encoding it cannot undo, or bytes that are not what the header says, is reported
in :attr:`BodyDecoder.problem`, never raised.
"""

from __future__ import annotations

import zlib
from typing import Final

__all__ = ["ACCEPT_ENCODING", "BodyDecoder"]

ACCEPT_ENCODING: Final = "gzip, deflate"
"""What the SDK asks for: the encodings :class:`BodyDecoder` undoes."""

_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_ZLIB_WBITS: Final = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS: Final = -zlib.MAX_WBITS


class BodyDecoder:
    """Decodes one body under ``content_encoding``, keeping at most ``limit + 1`` bytes.

    Feed raw chunks with :meth:`feed` until it returns ``False`` (enough read: the
    body is over the cap, or cannot be decoded), then call :meth:`finish`.

    >>> decoder = BodyDecoder("identity", limit=10)
    >>> decoder.feed(b'{"code": 200}')
    False
    >>> decoder.finish().oversized
    True
    """

    __slots__ = ("_body", "_decompressor", "_deflate", "_limit", "oversized", "problem")

    def __init__(self, content_encoding: str, *, limit: int) -> None:
        self._limit = limit
        self._body = bytearray()
        self.oversized = False
        self.problem = ""
        self._decompressor: zlib._Decompress | None = None
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            self.problem = f"Content-Encoding {content_encoding!r} stacks encodings"
        elif codings and codings[0] in ("gzip", "x-gzip"):
            self._decompressor = zlib.decompressobj(_GZIP_WBITS)
        elif codings and codings[0] != "deflate":
            self.problem = f"Content-Encoding {codings[0]!r} is not supported"
        # zlib-wrapped or raw deflate: decided by the first bytes.
        self._deflate = codings == ["deflate"]

    @property
    def body(self) -> bytes:
        return bytes(self._body)

    def feed(self, chunk: bytes) -> bool:
        """Take one raw chunk; ``False`` once reading on would be wasted."""
        if self._stopped():
            return False
        if self._deflate and self._decompressor is None:
            # RFC 9110 says zlib-wrapped; some servers send raw deflate: look.
            wrapped = len(chunk) >= 2 and (chunk[0] * 256 + chunk[1]) % 31 == 0
            self._decompressor = zlib.decompressobj(_ZLIB_WBITS if wrapped else _RAW_DEFLATE_WBITS)
        if self._decompressor is None:
            self._keep(chunk)
        else:
            self._inflate(chunk)
        return not self._stopped()

    def _stopped(self) -> bool:
        return bool(self.problem) or self.oversized

    def _inflate(self, chunk: bytes) -> None:
        assert self._decompressor is not None
        room = self._limit + 1 - len(self._body)
        try:
            out = self._decompressor.decompress(chunk, room)
        except zlib.error:
            self.problem = "the body is not what its Content-Encoding says"
            return
        self._keep(out)
        if self._decompressor.unconsumed_tail and not self.oversized:
            self.oversized = True  # output was cut at the cap: there is more

    def _keep(self, data: bytes) -> None:
        room = self._limit + 1 - len(self._body)
        self._body += data[:room]
        if len(self._body) > self._limit:
            self.oversized = True

    def finish(self) -> BodyDecoder:
        """Flush what the decompressor holds; a stream cut short is a problem."""
        decompressor = self._decompressor
        if decompressor is not None and not (self.problem or self.oversized):
            try:
                self._keep(decompressor.flush())
            except zlib.error:
                self.problem = "the body is not what its Content-Encoding says"
            if not decompressor.eof and not self.problem and not self.oversized:
                self.problem = "the compressed body ends early"
        return self
