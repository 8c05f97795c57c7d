"""Pacing pinned at its edges: the 100,000-a-minute switch and the uncapped schedule."""

from __future__ import annotations

import pytest

from mailpartner_async._core.pacing import RateSchedule


def _starts(schedule: RateSchedule, count: int, now: float = 0.0) -> list[float]:
    return [schedule.reserve(now) for _ in range(count)]


@pytest.mark.parametrize(
    ("per_minute", "second_start"),
    [
        (60, 1.0),
        (100_000, 60 / 100_000),
        (100_001, 60.5 / 100_001),
        (200_000, 60.5 / 200_000),
    ],
)
def test_spacing_is_60_seconds_over_the_limit_and_60_5_above_100000(
    per_minute: int, second_start: float
) -> None:
    assert _starts(RateSchedule(per_minute), 2) == [0.0, second_start]


@pytest.mark.parametrize("per_minute", [None, 100_001, 1_000_000])
def test_uncapped_and_over_100000_schedules_keep_no_window_log(per_minute: int | None) -> None:
    schedule = RateSchedule(per_minute)
    _starts(schedule, 3)
    assert schedule._recent is None


@pytest.mark.parametrize("per_minute", [1, 2000, 100_000])
def test_schedules_up_to_100000_keep_a_log_of_the_last_limit_starts(per_minute: int) -> None:
    schedule = RateSchedule(per_minute)
    starts = _starts(schedule, 3)
    assert schedule._recent is not None
    assert schedule._recent.maxlen == per_minute
    assert list(schedule._recent) == starts[-per_minute:]


def test_uncapped_schedule_starts_everything_now_until_paused() -> None:
    schedule = RateSchedule(None)
    assert _starts(schedule, 3, now=5.0) == [5.0, 5.0, 5.0]
    schedule.pause_until(9.0)
    assert _starts(schedule, 2, now=6.0) == [9.0, 9.0]


@pytest.mark.parametrize("per_minute", [None, 1, 60, 100_001])
def test_schedule_shows_its_limit(per_minute: int | None) -> None:
    assert RateSchedule(per_minute).per_minute == per_minute
