"""rate_limit_per_minute: code 429 past the cap, in a sliding 60 s window of rate_clock."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mailpartner_async import CancelCode, RateLimitError
from mailpartner_async.testing import FakeMailPartner

ENDPOINT = "/v1/message-cancel"
CANCEL = [("apiKey", "test-key"), ("messageId", "1")]


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_past_the_cap_get_429_with_retry_after() -> None:
    ticker = Ticker()
    fake = FakeMailPartner(rate_limit_per_minute=3, rate_clock=ticker)
    answers = []
    for _ in range(3):
        answers.append(fake.handle("GET", ENDPOINT, CANCEL))
        ticker.now += 10
    refused = fake.handle("GET", ENDPOINT, CANCEL)

    assert [a.code for a in answers] == [4, 4, 4]
    assert (refused.status, refused.code) == (429, 429)
    assert dict(refused.headers)["retry-after"] == "30"  # first one leaves at 1060
    assert json.loads(refused.body) == {
        "success": False,
        "code": 429,
        "message": "Too many requests",
    }


def test_window_slides_and_refused_requests_do_not_count() -> None:
    ticker = Ticker()
    fake = FakeMailPartner(rate_limit_per_minute=2, rate_clock=ticker)
    fake.handle("GET", ENDPOINT, CANCEL)  # t=1000
    ticker.now = 1030
    fake.handle("GET", ENDPOINT, CANCEL)  # t=1030
    ticker.now = 1059.9
    assert fake.handle("GET", ENDPOINT, CANCEL).code == 429
    assert fake.handle("GET", ENDPOINT, CANCEL).code == 429
    ticker.now = 1060  # the request of t=1000 is 60 s old: out of the window
    assert fake.handle("GET", ENDPOINT, CANCEL).code == 4
    assert fake.handle("GET", ENDPOINT, CANCEL).code == 429
    ticker.now = 1090
    assert fake.handle("GET", ENDPOINT, CANCEL).code == 4


def test_retry_after_is_at_least_one_second() -> None:
    ticker = Ticker()
    fake = FakeMailPartner(rate_limit_per_minute=1, rate_clock=ticker)
    fake.handle("GET", ENDPOINT, CANCEL)
    ticker.now += 59.95
    assert dict(fake.handle("GET", ENDPOINT, CANCEL).headers)["retry-after"] == "1"


def test_429_comes_in_xml_when_asked() -> None:
    fake = FakeMailPartner(rate_limit_per_minute=1, rate_clock=Ticker())
    fake.handle("GET", ENDPOINT, CANCEL)
    refused = fake.handle("GET", ENDPOINT, [*CANCEL, ("_format", "xml")])
    assert b"<entry>429</entry>" in refused.body


def test_rate_window_shortens_the_sliding_window_and_the_retry_after() -> None:
    ticker = Ticker()
    fake = FakeMailPartner(rate_limit_per_minute=2, rate_clock=ticker, rate_window=5)
    assert fake.rate_window == 5.0
    fake.handle("GET", ENDPOINT, CANCEL)  # t=1000
    ticker.now = 1001
    fake.handle("GET", ENDPOINT, CANCEL)  # t=1001
    ticker.now = 1002.5
    refused = fake.handle("GET", ENDPOINT, CANCEL)
    assert (refused.code, dict(refused.headers)["retry-after"]) == (429, "3")  # 1005 - 1002.5
    ticker.now = 1005  # the request of t=1000 is 5 s old: out of the window
    assert fake.handle("GET", ENDPOINT, CANCEL).code == 4
    assert fake.handle("GET", ENDPOINT, CANCEL).code == 429


@pytest.mark.parametrize("window", [0, -1, True, "5", float("inf"), float("nan")])
def test_fake_refuses_a_bad_rate_window(window: object) -> None:
    with pytest.raises(ValueError, match="rate_window must be a positive number"):
        FakeMailPartner(rate_window=window)  # type: ignore[arg-type]


def test_default_rate_clock_is_real_elapsed_time() -> None:
    fake = FakeMailPartner(rate_limit_per_minute=5)
    codes = [fake.handle("GET", ENDPOINT, CANCEL).code for _ in range(6)]
    assert codes == [4, 4, 4, 4, 4, 429]


def test_no_cap_by_default() -> None:
    fake = FakeMailPartner()
    assert {fake.handle("GET", ENDPOINT, CANCEL).code for _ in range(3000)} == {4}


@pytest.mark.anyio
async def test_sdk_sees_rate_limit_error_past_the_cap() -> None:
    fake = FakeMailPartner(rate_limit_per_minute=2, rate_clock=Ticker())
    ids = [fake.schedule(timedelta(hours=1)) for _ in range(3)]
    async with fake.async_client(max_retries=1) as client:
        done = [await client.cancel(i) for i in ids[:2]]
        with pytest.raises(RateLimitError) as caught:
            await client.cancel(ids[2])
    assert [r.code for r in done] == [CancelCode.CANCELLED] * 2
    assert (caught.value.http_status, caught.value.retry_after) == (429, 60)
    assert fake.status(ids[2]) == "scheduled"
    assert [r.code for r in fake.requests] == [200, 200, 429, 429]
