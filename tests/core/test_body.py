"""BodyDecoder: Content-Encoding undone under a cap, never more than the cap in memory.

Then pinned at its edges for the mutation gate (``nox -s mutate``): when reading
stops, and deflate however its bytes are cut.
"""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from mailpartner_async._core.body import BodyDecoder

LIMIT = 1024


def decode(encoding: str, data: bytes, chunk: int = 100) -> BodyDecoder:
    decoder = BodyDecoder(encoding, limit=LIMIT)
    for start in range(0, len(data), chunk):
        if not decoder.feed(data[start : start + chunk]):
            break
    return decoder.finish()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("", b'{"code": 200}'),
        ("identity", b'{"code": 200}'),
        ("gzip", gzip.compress(b'{"code": 200}')),
        ("x-gzip", gzip.compress(b'{"code": 200}')),
        ("GZIP", gzip.compress(b'{"code": 200}')),
        ("deflate", zlib.compress(b'{"code": 200}')),
        ("deflate", raw_deflate(b'{"code": 200}')),
        ("identity, gzip", gzip.compress(b'{"code": 200}')),
    ],
)
def test_each_supported_encoding_decodes_to_the_body(encoding: str, wire: bytes) -> None:
    decoder = decode(encoding, wire, chunk=3)
    assert (decoder.body, decoder.oversized, decoder.problem) == (b'{"code": 200}', False, "")


def test_a_decompression_bomb_stops_at_the_cap_plus_one_byte_in_bounded_memory() -> None:
    bomb = gzip.compress(b"0" * 10_000_000)
    tracemalloc.start()
    try:
        decoder = decode("gzip", bomb, chunk=len(bomb))  # one chunk: 10 MB if inflated
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"inflated {peak} bytes for a cap of {LIMIT}"
    assert decoder.oversized
    assert len(decoder.body) == LIMIT + 1
    assert decoder.problem == ""


def test_a_plain_body_over_the_cap_keeps_cap_plus_one_byte() -> None:
    decoder = decode("", b"x" * (LIMIT * 3))
    assert (len(decoder.body), decoder.oversized) == (LIMIT + 1, True)


def test_feed_says_stop_once_nothing_more_is_useful() -> None:
    decoder = BodyDecoder("", limit=4)
    assert decoder.feed(b"abcd") is True
    assert decoder.feed(b"e") is False
    assert decoder.feed(b"f") is False


@pytest.mark.parametrize(
    ("encoding", "wire", "problem"),
    [
        ("gzip", b"not gzip at all", "the body is not what its Content-Encoding says"),
        ("deflate", b"\x00\x01\x02garbage", "the body is not what its Content-Encoding says"),
        ("gzip", gzip.compress(b'{"code": 200}')[:-8], "the compressed body ends early"),
        ("br", b"whatever", "Content-Encoding 'br' is not supported"),
        ("gzip, gzip", b"x", "Content-Encoding 'gzip, gzip' stacks encodings"),
    ],
)
def test_bodies_that_cannot_be_decoded_say_why(encoding: str, wire: bytes, problem: str) -> None:
    assert decode(encoding, wire).problem == problem


# --- pinned: when reading stops, and deflate however its bytes are cut ----------------


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
