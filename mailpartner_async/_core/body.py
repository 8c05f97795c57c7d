"""Sans-I/O body decoding: ``Content-Encoding`` undone, with a cap on the decoded size.

Transports hand the bytes they read, as they come, to a :class:`BodyDecoder`; it
inflates gzip and deflate itself, never producing more than ``limit + 1`` bytes, so
61 KB on the wire that would inflate to 60 MB costs at most the cap in memory. An
encoding it cannot undo, or bytes that are not what the header says, is reported
in :attr:`BodyDecoder.problem`, never raised.
"""

from __future__ import annotations

import zlib
from typing import Final, Protocol

__all__ = ["ACCEPT_ENCODING", "BodyDecoder"]


class _Inflater(Protocol):
    """What the decoder needs of a ``zlib.decompressobj()`` (whose class is private)."""

    @property
    def eof(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


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

    __slots__ = ("_body", "_decompressor", "_deflate", "_head", "_limit", "oversized", "problem")

    def __init__(self, content_encoding: str, *, limit: int) -> None:
        self._limit = limit
        self._body = bytearray()
        self.oversized = False
        self.problem = ""
        self._decompressor: _Inflater | None = None
        self._head = b""  # deflate's first bytes, until there are two to look at
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
            # RFC 9110 says zlib-wrapped; some servers send raw deflate: the first two
            # bytes tell, however the body was cut into chunks.
            chunk = self._head + chunk
            if len(chunk) < 2:
                self._head = chunk
                return True
            wrapped = (chunk[0] * 256 + chunk[1]) % 31 == 0
            self._decompressor = zlib.decompressobj(_ZLIB_WBITS if wrapped else _RAW_DEFLATE_WBITS)
        if self._decompressor is None:
            self._keep(chunk)
        else:
            self._inflate(self._decompressor, chunk)
        return not self._stopped()

    def _stopped(self) -> bool:
        return bool(self.problem) or self.oversized

    def _room(self) -> int:
        """Bytes the body may still take: up to one past the cap, to know it is over."""
        return self._limit + 1 - len(self._body)

    def _inflate(self, decompressor: _Inflater, chunk: bytes) -> None:
        # Never more out than the room left: zlib stops there and holds the rest of
        # its input, so a bomb costs no more than the cap.
        try:
            self._keep(decompressor.decompress(chunk, self._room()))
        except zlib.error:
            self.problem = "the body is not what its Content-Encoding says"

    def _keep(self, data: bytes) -> None:
        self._body += data[: self._room()]
        if len(self._body) > self._limit:
            self.oversized = True

    def finish(self) -> BodyDecoder:
        """Say whether a compressed body was cut short; returns the decoder.

        Nothing is left to flush: zlib gives out less than the room left only when
        it has given out all it can of the input so far.
        """
        if not self._stopped() and self._awaits_more():
            self.problem = "the compressed body ends early"
        return self

    def _awaits_more(self) -> bool:
        if self._decompressor is None:
            return bool(self._head)  # a lone byte of deflate: no stream is that short
        return not self._decompressor.eof
