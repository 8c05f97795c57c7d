"""ResponseInfo, the status and headers of the answer that decided a call (exact
values): names lowercased, values redacted as they arrive, the provider's request id,
its repr, equality, hash and pickling."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping

import pytest

from mailpartner_async._core.response import REQUEST_ID_HEADERS, ResponseInfo
from mailpartner_async._core.secrets import Secret

KEY = "mp-live-4f9c2a7d1e"


def test_the_request_id_headers_are_these_in_this_order() -> None:
    assert REQUEST_ID_HEADERS == (
        "x-request-id",
        "request-id",
        "x-correlation-id",
        "x-amzn-requestid",
        "x-amz-request-id",
    )


@pytest.mark.parametrize(
    ("headers", "secret", "shown"),
    [
        ({}, None, {}),
        (
            {"Content-Type": "application/json", "X-Request-ID": "r-1"},
            None,
            {"content-type": "application/json", "x-request-id": "r-1"},
        ),
        # apiKey= values are masked whoever's key they are; the request's key anywhere.
        (
            {"Location": "/v1/message-cancel?apiKey=other-key-123&messageId=1"},
            None,
            {"location": "/v1/message-cancel?apiKey=[REDACTED]&messageId=1"},
        ),
        ({"X-Echo": f"key {KEY} seen"}, Secret(KEY), {"x-echo": "key [REDACTED] seen"}),
        ({"X-Echo": f"key {KEY} seen"}, KEY, {"x-echo": "key [REDACTED] seen"}),
        ({"X-Echo": f"key {KEY} seen"}, None, {"x-echo": f"key {KEY} seen"}),
    ],
)
def test_headers_are_kept_with_lowercase_names_and_redacted_values(
    headers: Mapping[str, str], secret: Secret | str | None, shown: dict[str, str]
) -> None:
    info = ResponseInfo(200, headers, secret=secret)

    assert dict(info.headers) == shown
    assert info.status == 200


def test_the_headers_are_read_only() -> None:
    info = ResponseInfo(200, {"x-request-id": "r-1"})

    with pytest.raises(TypeError):
        info.headers["x-request-id"] = "r-2"  # type: ignore[index]


@pytest.mark.parametrize(
    ("headers", "request_id"),
    [
        ({}, None),
        ({"content-type": "text/xml"}, None),
        ({"X-Request-Id": "r-1"}, "r-1"),
        ({"request-id": "r-2"}, "r-2"),
        ({"x-correlation-id": "r-3"}, "r-3"),
        ({"x-amzn-RequestId": "r-4"}, "r-4"),
        ({"x-amz-request-id": "r-5"}, "r-5"),
        # The first of the list wins, whatever the order the answer gave them in.
        ({"x-amz-request-id": "r-5", "request-id": "r-2", "x-request-id": "r-1"}, "r-1"),
        ({"x-amz-request-id": "r-5", "x-correlation-id": "r-3"}, "r-3"),
        ({"x-amzn-requestid": "r-4", "x-amz-request-id": "r-5"}, "r-4"),
        # An empty one names nothing: the next is read.
        ({"x-request-id": "", "request-id": "r-2"}, "r-2"),
        ({"x-request-id": ""}, None),
        ({"x-request-id": f"id-{KEY}"}, "id-[REDACTED]"),
    ],
)
def test_the_request_id_is_the_first_request_id_header_the_answer_carried(
    headers: Mapping[str, str], request_id: str | None
) -> None:
    assert ResponseInfo(200, headers, secret=KEY).request_id == request_id


@pytest.mark.parametrize(
    ("info", "shown"),
    [
        (ResponseInfo(200, {}), "ResponseInfo(status=200, request_id=None)"),
        (
            ResponseInfo(429, {"X-Request-ID": "r-1", "x-other": "o"}),
            "ResponseInfo(status=429, request_id='r-1')",
        ),
    ],
)
def test_the_repr_shows_the_status_and_the_request_id(info: ResponseInfo, shown: str) -> None:
    assert repr(info) == shown


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (ResponseInfo(200, {"a": "1"}), ResponseInfo(200, {"A": "1"}), True),
        (ResponseInfo(200, {"a": "1", "b": "2"}), ResponseInfo(200, {"b": "2", "a": "1"}), True),
        (ResponseInfo(200, {"a": "1"}), ResponseInfo(201, {"a": "1"}), False),
        (ResponseInfo(200, {"a": "1"}), ResponseInfo(200, {"a": "2"}), False),
        (ResponseInfo(200, {"a": "1"}), ResponseInfo(200, {}), False),
        (
            ResponseInfo(200, {"x": f"is {KEY}"}, secret=KEY),
            ResponseInfo(200, {"x": "is [REDACTED]"}),
            True,
        ),
    ],
)
def test_two_answers_are_equal_by_status_and_shown_headers(
    left: ResponseInfo, right: ResponseInfo, equal: bool
) -> None:
    assert (left == right, left != right) == (equal, not equal)
    if equal:
        assert hash(left) == hash(right)
        assert len({left, right}) == 1


def test_the_hash_is_of_the_status_and_the_sorted_headers() -> None:
    info = ResponseInfo(503, {"b": "2", "A": "1"})

    assert hash(info) == hash((503, (("a", "1"), ("b", "2"))))


@pytest.mark.parametrize("other", [200, (200, {}), None, "ResponseInfo(status=200)"])
def test_an_answer_is_never_equal_to_something_else(other: object) -> None:
    info = ResponseInfo(200, {})

    assert info.__eq__(other) is NotImplemented
    assert (info == other, info != other) == (False, True)


def test_a_pickled_or_copied_answer_is_equal_and_holds_no_key() -> None:
    info = ResponseInfo(200, {"X-Request-ID": "r-1", "X-Echo": KEY}, secret=KEY)

    unpickled = pickle.loads(pickle.dumps(info))  # noqa: S301 -- our own bytes, just made

    for again in (unpickled, copy.copy(info), copy.deepcopy(info)):
        assert type(again) is ResponseInfo
        assert (again.status, dict(again.headers)) == (
            200,
            {"x-request-id": "r-1", "x-echo": "[REDACTED]"},
        )
    assert KEY.encode() not in pickle.dumps(info)
    assert info.__reduce__() == (
        ResponseInfo,
        (200, {"x-request-id": "r-1", "x-echo": "[REDACTED]"}),
    )
