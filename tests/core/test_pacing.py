"""RateSchedule: start times under a per-minute cap, checked exactly and by property,
then pinned at its edges: the 100,000-a-minute switch and the uncapped schedule."""

from __future__ import annotations

import itertools
import random

import pytest

from mailpartner_async._core.pacing import WINDOW_SECONDS, RateSchedule


def _most_starts_in_a_closed_window(starts: list[float]) -> int:
    """The largest number of ``starts`` (sorted) inside any closed 60-second interval."""
    most, first = 0, 0
    for last, start in enumerate(starts):
        while start - starts[first] > WINDOW_SECONDS:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.mark.parametrize(
    ("per_minute", "calls", "expected"),
    [
        (60, [0.0] * 5, [0.0, 1.0, 2.0, 3.0, 4.0]),
        (120, [10.0] * 4, [10.0, 10.5, 11.0, 11.5]),
        (30, [0.0, 0.5, 1.0], [0.0, 2.0, 4.0]),
        # Idle time does not bank a burst: a late caller starts at once, the next waits.
        (60, [0.0, 5.0, 5.0, 5.0], [0.0, 5.0, 6.0, 7.0]),
        (60, [0.0, 0.0, 100.0], [0.0, 1.0, 100.0]),
    ],
)
def test_starts_are_evenly_spaced(
    per_minute: int, calls: list[float], expected: list[float]
) -> None:
    schedule = RateSchedule(per_minute)

    assert [schedule.reserve(now) for now in calls] == expected


@pytest.mark.parametrize(("per_minute", "spacing"), [(2000, 0.03), (600, 0.1), (7, 60 / 7)])
def test_spacing_is_a_minute_divided_by_the_cap(per_minute: int, spacing: float) -> None:
    schedule = RateSchedule(per_minute)

    starts = [schedule.reserve(0.0) for _ in range(per_minute - 1)]

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps == pytest.approx([spacing] * (per_minute - 2))


@pytest.mark.parametrize("per_minute", [1, 2, 3, 10, 60])
def test_a_full_minute_of_back_to_back_calls_never_exceeds_the_cap(per_minute: int) -> None:
    schedule = RateSchedule(per_minute)

    starts = [schedule.reserve(0.0) for _ in range(per_minute * 5 + 1)]

    assert _most_starts_in_a_closed_window(starts) == per_minute
    # The start right after a full minute is strictly more than 60 s after the first.
    assert starts[per_minute] > starts[0] + WINDOW_SECONDS


def _call_times(rng: random.Random, count: int) -> list[float]:
    """Non-decreasing call times: bursts, short gaps and long idle stretches."""
    now, times = rng.uniform(0, 1000), []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.5:
            pass  # same instant: a burst
        elif kind < 0.8:
            now += rng.uniform(0, 1)
        elif kind < 0.95:
            now += rng.uniform(0, 30)
        else:
            now += rng.uniform(30, 200)
        times.append(now)
    return times


@pytest.mark.parametrize("seed", range(300))
def test_no_closed_60s_window_holds_more_than_the_cap(seed: int) -> None:
    rng = random.Random(seed)
    per_minute = rng.choice([1, 2, 3, 4, 5, 7, 10, 13, 30, 60, 100, 250])
    schedule = RateSchedule(per_minute)
    times = _call_times(rng, rng.randint(per_minute, 4 * per_minute + 30))

    starts = []
    for now in times:
        if rng.random() < 0.05:
            schedule.pause_until(now + rng.uniform(0, 90))
        # Half the callers run late: they reserve again once their own start is reached.
        start = schedule.reserve(now)
        starts.append(start)
        if rng.random() < 0.5:
            starts.append(schedule.reserve(start))

    assert _most_starts_in_a_closed_window(starts) <= per_minute
    assert all(later > earlier for earlier, later in itertools.pairwise(starts))


@pytest.mark.parametrize("seed", range(50))
@pytest.mark.parametrize("per_minute", [None, 5, 2000])
def test_starts_are_monotonic_and_never_before_now(seed: int, per_minute: int | None) -> None:
    rng = random.Random(seed)
    schedule = RateSchedule(per_minute)

    previous = -1.0
    for now in _call_times(rng, 200):
        start = schedule.reserve(now)
        assert start >= now
        assert start >= previous
        previous = start


def test_a_cap_above_the_window_log_still_never_exceeds_it() -> None:
    # 60 / 2**17 is exact in binary, so the sums below are exact too.
    per_minute = 2**17
    schedule = RateSchedule(per_minute)

    starts = [schedule.reserve(0.0) for _ in range(per_minute + 1)]

    assert _most_starts_in_a_closed_window(starts) <= per_minute


@pytest.mark.parametrize(
    ("per_minute", "pauses", "calls", "expected"),
    [
        (None, [10.0], [0.0, 11.0], [10.0, 11.0]),
        (None, [10.0, 5.0], [0.0], [10.0]),  # a later, shorter pause does not shorten it
        (None, [5.0, 10.0], [0.0], [10.0]),
        (60, [30.0], [1.0, 1.0, 1.0], [30.0, 31.0, 32.0]),
        (60, [0.5], [1.0, 1.0], [1.0, 2.0]),  # a pause already over holds nothing back
    ],
)
def test_pause_holds_back_later_starts(
    per_minute: int | None, pauses: list[float], calls: list[float], expected: list[float]
) -> None:
    schedule = RateSchedule(per_minute)
    for when in pauses:
        schedule.pause_until(when)

    assert [schedule.reserve(now) for now in calls] == expected
    assert schedule.paused_until == max(pauses)


def test_pause_after_a_start_holds_back_the_next_one() -> None:
    schedule = RateSchedule(60)
    assert schedule.reserve(0.0) == 0.0

    schedule.pause_until(45.0)

    assert schedule.reserve(0.0) == 45.0
    assert schedule.reserve(0.0) == 46.0


@pytest.mark.parametrize("now", [0.0, 5.0, 1e9])
def test_no_cap_gives_no_spacing(now: float) -> None:
    schedule = RateSchedule(None)

    assert [schedule.reserve(now) for _ in range(10_000)] == [now] * 10_000


def test_a_reservation_covered_by_a_later_pause_takes_a_new_place_after_it() -> None:
    schedule = RateSchedule(60)  # one start a second
    reserved = [schedule.reserve(0.0) for _ in range(3)]
    assert reserved == [0.0, 1.0, 2.0]
    schedule.pause_until(10.0)
    # Woken at their times, the callers inside the pause are spaced again after it.
    assert schedule.confirm(1.0, now=1.0) == 10.0
    assert schedule.confirm(2.0, now=2.0) == 11.0


def test_a_reservation_after_the_pause_is_kept() -> None:
    schedule = RateSchedule(60)
    schedule.pause_until(5.0)
    start = schedule.reserve(0.0)
    assert start == 5.0
    assert schedule.confirm(start, now=5.0) == 5.0


# --- pinned at its edges: the 100,000-a-minute switch and the uncapped schedule -------


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
