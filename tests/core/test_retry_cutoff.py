"""Retries within the cut-off, the sans-I/O part: whether a retry may still start in
time (table-driven, then a Hypothesis property against ``too_late``), the error that
says why none followed, and the pacer's earliest start, which claims nothing."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpartner_async import (
    APIConnectionError,
    CancelOutcome,
    RateLimitError,
    UnexpectedResponseError,
)
from mailpartner_async._core.pacing import RateSchedule
from mailpartner_async._core.rescue import CANCEL_CUTOFF, not_retried, retry_past_cutoff, too_late

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cutoff_in", "wait", "made"),
    [
        (10.0, 0.0, True),
        (10.0, 9.99, True),
        (10.0, 10.0, True),  # a start exactly at the cut-off is in time
        (10.0, 10.001, False),
        (10.0, 30.0, False),
        (0.0, 0.0, True),
        (0.0, 0.001, False),
        (-5.0, 0.0, False),  # the cut-off passed already
        (3600.0, 60.0, True),
        (10.0, float("inf"), False),
    ],
)
def test_a_retry_is_made_only_when_its_earliest_start_is_not_after_the_cutoff(
    cutoff_in: float, wait: float, made: bool
) -> None:
    refused = retry_past_cutoff(NOW, NOW + timedelta(seconds=cutoff_in), wait)
    assert (refused is None) is made


def test_the_refusal_says_when_the_retry_could_start_and_when_the_cutoff_is() -> None:
    assert retry_past_cutoff(NOW, NOW + timedelta(seconds=10), 30.0) == (
        "not retried: it could start 30.0 s from now at the earliest, after the cut-off "
        "at 2030-01-01T12:00:10+00:00 (10.0 s from now)"
    )


def test_the_refusal_says_how_long_ago_a_passed_cutoff_passed() -> None:
    refused = retry_past_cutoff(NOW, NOW - timedelta(seconds=50), 0.01)
    assert refused is not None
    assert refused.endswith("(passed 50.0 s ago)")


def test_not_retried_keeps_the_error_class_and_fields_and_adds_the_reason() -> None:
    error = RateLimitError(
        "Too many requests", code=429, message_id="300", http_status=429, retry_after=30.0
    )
    same = not_retried(error, "not retried: the cut-off")
    assert same is error
    assert type(same) is RateLimitError
    assert (same.code, same.http_status, same.retry_after) == (429, 429, 30.0)
    assert same.message == "Too many requests; not retried: the cut-off"
    assert str(same) == "[code 429] Too many requests; not retried: the cut-off (message id '300')"
    assert same.args == (same.message,)
    again = pickle.loads(pickle.dumps(same))  # noqa: S301 - our own bytes, just made
    assert str(again) == str(same)


@pytest.mark.parametrize(
    "error",
    [
        APIConnectionError("request failed", message_id="1", request_sent=True),
        UnexpectedResponseError("HTTP 503", message_id="1", http_status=503),
    ],
)
def test_an_outcome_not_retried_is_neither_ok_nor_stopped(error: Exception) -> None:
    assert isinstance(error, APIConnectionError | UnexpectedResponseError)
    outcome = CancelOutcome("1", error=not_retried(error, "not retried: the cut-off"))
    assert not outcome.ok
    assert not outcome.stopped


# Microseconds, so that the float seconds of the rule and the datetimes of ``too_late``
# describe the same instants exactly.
_DAY_US = 86_400 * 10**6


@given(
    left_us=st.integers(-_DAY_US, _DAY_US),
    wait_us=st.integers(0, 2 * _DAY_US),
    offset_us=st.integers(-10 * _DAY_US, 10 * _DAY_US),
)
def test_a_retry_is_refused_exactly_when_the_api_would_refuse_a_cancel_at_its_start(
    left_us: int, wait_us: int, offset_us: int
) -> None:
    now = NOW + timedelta(microseconds=offset_us)
    cutoff_at = now + timedelta(microseconds=left_us)
    send_at = cutoff_at + CANCEL_CUTOFF
    start = now + timedelta(microseconds=wait_us)
    refused = retry_past_cutoff(now, cutoff_at, wait_us / 1e6)
    assert (refused is not None) is too_late(send_at, start)


@given(
    left=st.floats(-1e6, 1e6),
    waits=st.lists(st.floats(0, 1e7), min_size=2, max_size=2),
)
def test_a_longer_wait_is_never_made_when_a_shorter_one_is_refused(
    left: float, waits: list[float]
) -> None:
    short, long = sorted(waits)
    cutoff_at = NOW + timedelta(seconds=left)
    if retry_past_cutoff(NOW, cutoff_at, short) is not None:
        assert retry_past_cutoff(NOW, cutoff_at, long) is not None


@pytest.mark.parametrize("per_minute", [None, 2, 2000, 200_000])
def test_earliest_is_the_start_the_next_reserve_gets_and_claims_nothing(
    per_minute: int | None,
) -> None:
    schedule = RateSchedule(per_minute)
    now = 100.0
    for _ in range(5):
        schedule.reserve(now)
    expected = schedule.earliest(now)
    assert schedule.earliest(now) == expected  # asking twice: the same start
    assert schedule.reserve(now) == expected


def test_earliest_waits_for_a_pause() -> None:
    schedule = RateSchedule(None)
    schedule.pause_until(130.0)
    assert schedule.earliest(100.0) == 130.0
    assert schedule.earliest(140.0) == 140.0


@pytest.mark.parametrize("seed", range(30))
def test_earliest_bounds_every_later_start_from_below(seed: int) -> None:
    rng = random.Random(seed)
    schedule = RateSchedule(rng.choice([None, 3, 60, 2000]))
    now = 0.0
    for _ in range(200):
        bound = schedule.earliest(now)
        now += rng.choice([0.0, 0.001, 0.5, 5.0])
        if rng.random() < 0.1:
            schedule.pause_until(now + rng.uniform(0, 10))
        assert schedule.reserve(now) >= bound
        assert schedule.earliest(now) >= bound
