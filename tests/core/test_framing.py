"""The raw head scan: a Content-Length sent more than once is found as the server sent
it, however the bytes are cut, and nothing past the head counts."""

from __future__ import annotations

import pytest

from mailpartner_async._core.attempt import transport_error
from mailpartner_async._core.framing import (
    OVERSIZED_HEAD,
    REPEATED_LENGTH,
    HeadScan,
    head_refusal,
    oversized_fields,
    repeats_content_length,
)

STATUS = b"HTTP/1.1 200 OK"


def head(*fields: bytes, end: bytes = b"\r\n") -> bytes:
    return end.join([STATUS, *fields]) + end + end


@pytest.mark.parametrize(
    ("fields", "repeated"),
    [
        ((b"Content-Length: 7",), False),
        ((b"Content-Length: 7", b"Content-Length: 7"), True),
        ((b"content-length: 7", b"CONTENT-LENGTH: 8"), True),
        ((b"Content-Length: 7, 7",), True),
        ((b"Content-Length: 7", b"X-Content-Length: 7"), False),
        # A line that starts with a space continues the field before it (obs-fold).
        ((b"X-Note: a", b" Content-Length: 7", b"Content-Length: 7"), False),
        ((b"Content-Length : 7", b"Content-Length: 7"), False),
        ((b"Set-Cookie: a=1, b=2", b"Content-Length: 7"), False),
        ((), False),
    ],
    ids=[
        "once",
        "twice-same",
        "twice-any-case",
        "listed",
        "other-name",
        "folded-line",
        "space-before-colon",
        "comma-elsewhere",
        "none",
    ],
)
def test_a_repeat_is_found_in_the_field_lines_only(
    fields: tuple[bytes, ...], repeated: bool
) -> None:
    assert repeats_content_length(head(*fields)) is repeated


def scan(data: bytes, chunk: int) -> HeadScan:
    scanned = HeadScan()
    for start in range(0, len(data), chunk):
        scanned.feed(data[start : start + chunk])
    return scanned


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1000])
@pytest.mark.parametrize("end", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_the_head_is_refused_however_its_bytes_are_cut(chunk: int, end: bytes) -> None:
    data = head(b"Content-Length: 7", b"Content-Length: 7", end=end) + b'{"a":1}'

    scanned = scan(data, chunk)

    assert scanned.done
    assert scanned.refused == REPEATED_LENGTH


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_lines_past_the_head_are_not_read_as_fields(chunk: int) -> None:
    body = b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n"
    data = head(b"Content-Length: %d" % len(body)) + body

    scanned = scan(data, chunk)

    assert scanned.done
    assert scanned.refused == ""


def test_a_head_without_end_past_the_cap_is_refused_as_oversized() -> None:
    scanned = HeadScan()
    scanned.feed(STATUS + b"\r\nX-Long: " + b"a" * 70_000)
    assert not scanned.done  # 64 KiB of lines may still end in time
    scanned.feed(b"a" * 20_000)
    assert (scanned.done, scanned.refused) == (True, OVERSIZED_HEAD)
    scanned.feed(b"\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n")
    assert scanned.refused == OVERSIZED_HEAD  # nothing read once it is done


def _line(size: int) -> bytes:
    return b"X-Long: " + b"a" * (size - len(b"X-Long: "))


# Each line at most 16 KiB, all of them at most 64 KiB (Name: value, no CRLF).
HEADS = [
    ([_line(16 * 1024)], ""),
    ([_line(16 * 1024 + 1)], OVERSIZED_HEAD),
    ([_line(16 * 1024)] * 4, ""),
    ([_line(16 * 1024)] * 4 + [b"A: b"], OVERSIZED_HEAD),
    ([_line(100)] * 655 + [_line(36)], ""),
    ([_line(100)] * 655 + [_line(37)], OVERSIZED_HEAD),
    ([b"Content-Length: 7", b"Content-Length: 7", _line(20_000)], REPEATED_LENGTH),
]


@pytest.mark.parametrize(("lines", "refused"), HEADS)
@pytest.mark.parametrize("chunk", [1000, 100_000])
def test_a_head_is_refused_exactly_past_the_limit(
    lines: list[bytes], refused: str, chunk: int
) -> None:
    data = head(*lines)

    assert head_refusal(data[: data.index(b"\r\n\r\n")]) == refused
    scanned = scan(data, chunk)
    assert scanned.done
    assert scanned.refused == refused


@pytest.mark.parametrize(
    ("lengths", "over"),
    [
        ([], False),
        ([16384], False),
        ([16385], True),
        ([16384] * 4, False),
        ([16384] * 4 + [1], True),
    ],
)
def test_oversized_fields_by_line_and_in_all(lengths: list[int], over: bool) -> None:
    assert oversized_fields(lengths) is over


def test_an_unfinished_head_is_not_judged_yet() -> None:
    scanned = HeadScan()
    scanned.feed(head(b"Content-Length: 7", b"Content-Length: 7")[:-2])
    assert not scanned.done
    assert scanned.refused == ""


def test_a_refused_framing_is_a_sent_connection_error_that_is_not_transient() -> None:
    error = transport_error(
        "RemoteProtocolError",
        "conflicting Content-Length headers",
        message_id="7",
        sent=False,
        timed_out=True,
        refused=REPEATED_LENGTH,
    )

    assert type(error).__name__ == "APIConnectionError"
    assert error.message == (
        f"the answer was refused: {REPEATED_LENGTH}; not retried "
        "(RemoteProtocolError: conflicting Content-Length headers)"
    )
    assert error.request_sent
    assert not error.transient
    assert error.message_id == "7"


@pytest.mark.parametrize("chunk", [1, 7, 1000])
@pytest.mark.parametrize(
    ("interim", "refused"),
    [
        (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", REPEATED_LENGTH),
        (b"HTTP/1.1 100 Continue\r\n\r\n", REPEATED_LENGTH),
        (b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n", REPEATED_LENGTH),
        # After 101 the connection speaks another protocol: nothing more is read as HTTP.
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", ""),
    ],
)
def test_the_final_answer_after_an_interim_one_is_the_head_judged(
    interim: bytes, refused: str, chunk: int
) -> None:
    data = interim + head(b"Content-Length: 7", b"Content-Length: 7") + b'{"a":1}'

    scanned = scan(data, chunk)

    assert scanned.done
    assert scanned.refused == refused
