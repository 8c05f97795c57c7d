"""BodyDecoder: Content-Encoding undone under a cap, never more than the cap in memory."""

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
