"""Pins for BodyDecoder: when reading stops, and deflate however its bytes are cut."""

from __future__ import annotations

import gzip
import zlib

import pytest

from mailpartner_async._core.body import BodyDecoder

BODY = b'{"success": true, "code": 200, "message": "cancelled"}'
RAW_DEFLATE = zlib.compressobj(wbits=-zlib.MAX_WBITS)
RAW_DEFLATE_BODY = RAW_DEFLATE.compress(BODY) + RAW_DEFLATE.flush()


def fed_in_chunks(encoding: str, wire: bytes, size: int) -> BodyDecoder:
    decoder = BodyDecoder(encoding, limit=1024)
    for start in range(0, len(wire), size):
        assert decoder.feed(wire[start : start + size]) is True
    return decoder.finish()


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize(
    "wire", [zlib.compress(BODY), RAW_DEFLATE_BODY], ids=["zlib-wrapped", "raw"]
)
def test_deflate_is_told_wrapped_or_raw_from_two_bytes_however_the_chunks_fall(
    wire: bytes, size: int
) -> None:
    decoder = fed_in_chunks("deflate", wire, size)
    assert (decoder.body, decoder.oversized, decoder.problem) == (BODY, False, "")


@pytest.mark.parametrize(
    ("encoding", "wire", "problem"),
    [
        ("deflate", zlib.compress(BODY)[:1], "the compressed body ends early"),
        ("deflate", b"\x03\x00", ""),  # raw deflate of nothing: two bytes are enough
        ("deflate", b"", ""),
        ("gzip", b"", "the compressed body ends early"),
        ("", b"", ""),
    ],
)
def test_a_body_too_short_for_its_stream_ends_early_but_an_empty_deflate_is_just_empty(
    encoding: str, wire: bytes, problem: str
) -> None:
    decoder = BodyDecoder(encoding, limit=1024)
    if wire:
        decoder.feed(wire)
    assert (decoder.finish().problem, decoder.body) == (problem, b"")


@pytest.mark.parametrize(
    ("encoding", "first_chunk"),
    [
        ("br", b"{}"),
        ("gzip, deflate", b"{}"),
        ("gzip", b"not gzip at all"),
        ("deflate", b"\x78\x9cnot deflate either"),
    ],
)
def test_feed_says_stop_at_the_first_chunk_once_the_body_cannot_be_decoded(
    encoding: str, first_chunk: bytes
) -> None:
    decoder = BodyDecoder(encoding, limit=1024)
    assert decoder.feed(first_chunk) is False
    assert decoder.problem != ""
    assert decoder.feed(b"more") is False


@pytest.mark.parametrize("size", [1, 100, 5000])
def test_a_gzip_body_over_the_cap_keeps_cap_plus_one_byte_whatever_the_chunks(size: int) -> None:
    decoder = BodyDecoder("gzip", limit=1024)
    wire = gzip.compress(b"x" * 5000)
    for start in range(0, len(wire), size):
        if not decoder.feed(wire[start : start + size]):
            break
    decoder.finish()
    assert (len(decoder.body), decoder.oversized, decoder.problem) == (1025, True, "")
