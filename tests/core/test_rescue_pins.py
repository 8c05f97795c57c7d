"""Rescue arithmetic pinned exactly: the plan's text, the skipped message's error, defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailpartner_async import CancelCode, CancellationTooLateError, ScheduledMessage, plan_rescue
from mailpartner_async._core.models import BatchItem
from mailpartner_async._core.rescue import too_late_error

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _in(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


# At 1 a minute: eleven plain ids start first, the last 10 minutes from now; six
# messages are already inside their last 5 minutes; two more would start 11 minutes
# from now, 3 minutes after their send time.
ITEMS: list[BatchItem] = [
    *(f"p{n}" for n in range(1, 12)),
    *(ScheduledMessage(f"l{n}", _in(1)) for n in range(1, 7)),
    ScheduledMessage("u1", _in(8)),
    ScheduledMessage("u2", _in(8)),
]


@pytest.mark.parametrize(
    ("show", "lost_line"),
    [
        ({}, "plan: 6 already inside their last 5 minutes: l1, l2, l3, l4, l5 and 1 more"),
        ({"show": 6}, "plan: 6 already inside their last 5 minutes: l1, l2, l3, l4, l5, l6"),
        ({"show": 2}, "plan: 6 already inside their last 5 minutes: l1, l2 and 4 more"),
    ],
)
def test_plan_describes_reach_last_start_and_the_first_ids_lost_and_out_of_reach(
    show: dict[str, int], lost_line: str
) -> None:
    plan = plan_rescue(ITEMS, now=NOW, rate_limit=1)
    assert plan.describe(**show).split("\n") == [
        "plan: 11 of 19 ids can be cancelled in time at 1/min",
        "plan: the last one starts at 2030-01-01T12:10:00+00:00 (in 10.0 min)",
        lost_line,
        "plan: 2 out of reach at this rate: u1, u2",
    ]


def test_an_empty_plan_without_a_rate_limit_is_one_line() -> None:
    plan = plan_rescue([], now=NOW, rate_limit=None)
    assert plan.describe() == "plan: 0 of 0 ids can be cancelled in time at no rate limit"


def test_plan_paces_at_the_apis_2000_a_minute_unless_told() -> None:
    plan = plan_rescue(["1", "2"], now=NOW)
    assert (plan.rate_limit, plan.last_start) == (2000, NOW + timedelta(seconds=0.03))


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (
            ScheduledMessage(7, _in(3)),
            "not attempted: the send time 2030-01-01T12:03:00+00:00 is less than 5 minutes "
            "away (its cut-off passed 120 s ago)",
        ),
        (
            ScheduledMessage("x", _in(-1)),
            "not attempted: the send time 2030-01-01T11:59:00+00:00 is less than 5 minutes "
            "away (its cut-off passed 360 s ago)",
        ),
    ],
)
def test_a_message_skipped_as_too_late_gets_code_6_its_id_and_how_late_it_was(
    message: ScheduledMessage, text: str
) -> None:
    error = too_late_error(message, NOW)
    assert type(error) is CancellationTooLateError
    assert (error.message, error.code, error.message_id) == (
        text,
        CancelCode.TOO_LATE,
        str(message.message_id),
    )
