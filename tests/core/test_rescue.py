"""Deadline-first rescue: the sans-I/O arithmetic (table-driven) and the batch using it;
then pinned exactly: the plan's text, the skipped message's error, the defaults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mailpartner_async import (
    AsyncMailPartner,
    CancelCode,
    CancellationTooLateError,
    ConfigurationError,
    ScheduledMessage,
    plan_rescue,
)
from mailpartner_async._core.models import BatchItem
from mailpartner_async._core.rescue import DeadlineQueue, cutoff, too_late, too_late_error
from mailpartner_async.testing import FakeClock, FakeMailPartner

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def msg(message_id: str, minutes: float) -> ScheduledMessage:
    return ScheduledMessage(message_id, at(minutes))


@pytest.mark.parametrize(
    ("send_in_minutes", "expected"),
    [(10, False), (5, False), (4.99, True), (0, True), (-1, True)],
)
def test_too_late_is_less_than_five_minutes_before_the_send(
    send_in_minutes: float, expected: bool
) -> None:
    assert too_late(at(send_in_minutes), NOW) is expected


def test_cutoff_is_five_minutes_before_the_send() -> None:
    assert cutoff(at(10)) == at(5)


def test_a_send_time_in_year_1_has_its_cutoff_at_the_smallest_aware_time() -> None:
    smallest = datetime.min.replace(tzinfo=UTC)
    assert cutoff(smallest + timedelta(minutes=4)) == smallest
    assert cutoff(smallest).tzinfo is UTC


def test_scheduled_message_refuses_a_naive_send_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        ScheduledMessage("1", datetime(2030, 1, 1, 12, 0))


def test_deadline_queue_pops_earliest_send_first_and_keeps_input_order_on_ties() -> None:
    queue = DeadlineQueue()
    for index, item in enumerate([msg("a", 30), msg("b", 10), msg("c", 30), msg("d", 20)]):
        queue.push(index, item)
    popped = []
    while (entry := queue.pop()) is not None:
        popped.append((entry[0], str(entry[1].message_id)))
    assert popped == [(1, "b"), (3, "d"), (0, "a"), (2, "c")]


# (items as (id, minutes ahead) or plain ids, rate a minute) ->
# (reachable, lost, unreachable, last start in seconds from now)
PLANS = [
    ([("a", 10), ("b", 20)], 2000, (2, (), (), 0.03)),
    ([("a", 4), ("b", 20)], 2000, (1, ("a",), (), 0.0)),
    # 2 a minute: starts at 0, 30, 60 s; "c" (cut-off at +1 min) is the third: lost.
    ([("a", 5.5), ("b", 5.6), ("c", 5.9), ("d", 30)], 2, (3, (), ("c",), 60.0)),
    # deadline first, whatever the input order
    ([("d", 30), ("c", 5.9), ("b", 5.6), ("a", 5.5)], 2, (3, (), ("c",), 60.0)),
    # exactly 5 minutes left at its start is still in time
    ([("a", 5.5), ("b", 5.5)], 2, (2, (), (), 30.0)),
    # plain ids start first and take slots
    (["p", ("a", 5.4)], 2, (1, (), ("a",), 0.0)),
    ([("a", 6), ("b", 6)], None, (2, (), (), 0.0)),
    ([], 2000, (0, (), (), None)),
]


@pytest.mark.parametrize(("items", "rate", "expected"), PLANS)
def test_plan_counts_reachable_lost_and_unreachable(
    items: list[tuple[str, float] | str], rate: int | None, expected: tuple[object, ...]
) -> None:
    given = [item if isinstance(item, str) else msg(*item) for item in items]
    plan = plan_rescue(given, now=NOW, rate_limit=rate)
    reachable, lost, unreachable, last = expected
    assert (plan.reachable, plan.lost, plan.unreachable) == (reachable, lost, unreachable)
    assert plan.total == len(items)
    if last is None:
        assert plan.last_start is None
    else:
        assert isinstance(last, float)
        assert plan.last_start == NOW + timedelta(seconds=last)


def test_plan_describes_itself_in_lines() -> None:
    plan = plan_rescue([msg("a", 4), msg("b", 20)], now=NOW, rate_limit=2000)
    text = plan.describe()
    assert "plan: 1 of 2 ids can be cancelled in time at 2000/min" in text
    assert "plan: 1 already inside their last 5 minutes: a" in text


def _fake_with(items: list[ScheduledMessage]) -> tuple[FakeMailPartner, FakeClock]:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    for item in items:
        fake.schedule(item.send_at, message_id=item.message_id)
    return fake, clock


@pytest.mark.anyio
async def test_batch_starts_earliest_cutoff_first_and_spends_nothing_on_lost_ids() -> None:
    items: list[ScheduledMessage | str] = [
        msg("far", 50),
        msg("lost", 3),
        msg("near", 6),
        msg("mid", 20),
        "plain",
    ]
    fake, clock = _fake_with([i for i in items if isinstance(i, ScheduledMessage)])
    fake.schedule(timedelta(hours=1), message_id="plain")
    client: AsyncMailPartner = fake.async_client()
    async with client:
        # The fake's clock drives the batch's cut-off checks too.
        outcomes = [o async for o in client.cancel_iter(items, concurrency=1, clock=clock)]
    assert [r.message_id for r in fake.requests] == ["plain", "near", "mid", "far"]
    lost = next(o for o in outcomes if o.message_id == "lost")
    assert isinstance(lost.error, CancellationTooLateError)
    assert lost.error.code == CancelCode.TOO_LATE
    assert fake.status("lost") == "scheduled"


@pytest.mark.anyio
async def test_cancel_many_checks_cutoffs_against_the_clock_it_is_given() -> None:
    # Ten minutes ahead of NOW: in time by the real clock (it is years before 2030),
    # too late by a clock that reads NOW + 6 minutes.
    items = [msg("soon", 10), msg("later", 30)]
    fake, clock = _fake_with(items)
    clock.advance(timedelta(minutes=6))
    async with fake.async_client() as client:
        outcomes = await client.cancel_many(items, clock=clock)
    assert [r.message_id for r in fake.requests] == ["later"]
    assert isinstance(outcomes[0].error, CancellationTooLateError)
    assert outcomes[1].ok


def test_sync_cancel_many_checks_cutoffs_against_the_clock_it_is_given() -> None:
    items = [msg("soon", 10), msg("later", 30)]
    fake, clock = _fake_with(items)
    clock.advance(timedelta(minutes=6))
    with fake.client() as client:
        outcomes = client.cancel_many(items, clock=clock)
    assert [r.message_id for r in fake.requests] == ["later"]
    assert isinstance(outcomes[0].error, CancellationTooLateError)


@pytest.mark.anyio
async def test_the_cutoff_is_checked_again_just_before_each_start() -> None:
    # Both in time when the batch begins; each request takes 2.5 minutes of the
    # batch's clock, so by the time "b" would start it is 4.5 minutes from its send.
    items = [msg("a", 6), msg("b", 7)]
    fake, _ = _fake_with(items)

    def clock() -> datetime:
        return NOW + timedelta(minutes=2.5) * len(fake.requests)

    async with fake.async_client() as client:
        outcomes = await client.cancel_many(items, concurrency=1, clock=clock)
    assert [r.message_id for r in fake.requests] == ["a"]
    assert outcomes[0].ok
    assert isinstance(outcomes[1].error, CancellationTooLateError)
    assert fake.status("b") == "scheduled"


def test_sync_batch_checks_the_cutoff_again_just_before_each_start() -> None:
    items = [msg("a", 6), msg("b", 7)]
    fake, _ = _fake_with(items)
    with fake.client() as client:
        outcomes = client.cancel_many(
            items,
            concurrency=1,
            clock=lambda: NOW + timedelta(minutes=2.5) * len(fake.requests),
        )
    assert [r.message_id for r in fake.requests] == ["a"]
    assert isinstance(outcomes[1].error, CancellationTooLateError)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"window": 0}, "window must be an int >= 1"),
        ({"window": 2.5}, "window must be an int >= 1"),
        ({"window": True}, "window must be an int >= 1"),
        ({"clock": "now"}, "clock must be a callable"),
        ({"clock": lambda: datetime(2030, 1, 1)}, "clock must return an aware datetime"),
        ({"clock": lambda: 0.0}, "clock must return an aware datetime"),
    ],
)
@pytest.mark.anyio
async def test_a_bad_window_or_clock_is_refused_before_any_request(
    options: dict[str, object], fragment: str
) -> None:
    fake, _ = _fake_with([msg("a", 30)])
    async with fake.async_client() as client:
        with pytest.raises(ConfigurationError, match=fragment):
            await client.cancel_many([msg("a", 30)], **options)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=fragment):
            client.cancel_iter([msg("a", 30)], **options)  # type: ignore[arg-type]
    with fake.client() as sync_client, pytest.raises(ConfigurationError, match=fragment):
        sync_client.cancel_many([msg("a", 30)], **options)  # type: ignore[arg-type]
    assert fake.requests == []


@pytest.mark.anyio
async def test_cancel_many_keeps_input_order_with_scheduled_items() -> None:
    items = [msg("b", 30), msg("a", 10)]
    fake, _ = _fake_with(items)
    async with fake.async_client() as client:
        outcomes = await client.cancel_many(items, concurrency=1)
    assert [o.message_id for o in outcomes] == ["b", "a"]
    assert [r.message_id for r in fake.requests] == ["a", "b"]
    assert all(o.ok for o in outcomes)


def test_sync_batch_orders_by_deadline_too() -> None:
    items = [msg("b", 30), msg("a", 10), msg("c", 20)]
    fake, _ = _fake_with(items)
    with fake.client() as client:
        outcomes = client.cancel_many(items, concurrency=1)
    assert [r.message_id for r in fake.requests] == ["a", "c", "b"]
    assert [o.message_id for o in outcomes] == ["b", "a", "c"]


@pytest.mark.anyio
async def test_a_small_window_orders_within_it_and_reads_no_further_ahead() -> None:
    items = [msg("d", 40), msg("c", 30), msg("b", 20), msg("a", 10)]
    fake, clock = _fake_with(items)
    pulled: list[str] = []

    def source() -> Iterator[ScheduledMessage]:
        for item in items:
            pulled.append(str(item.message_id))
            yield item

    async with fake.async_client() as client:
        batch = client.cancel_iter(source(), concurrency=1, clock=clock, window=2)
        first = await anext(batch)
        # c starts first: had the batch read past its window before starting, a (the
        # soonest) would have gone first.
        assert (first.message_id, pulled[:2]) == ("c", ["d", "c"])
        rest = [outcome.message_id async for outcome in batch]
    assert rest == ["b", "a", "d"]
    assert pulled == ["d", "c", "b", "a"]


def test_sync_batch_skips_lost_ids_and_orders_within_a_small_window() -> None:
    items = [msg("d", 40), msg("lost", 2), msg("b", 20), msg("a", 10)]
    fake, clock = _fake_with(items)
    with fake.client() as client:
        outcomes = client.cancel_many(iter(items), concurrency=1, clock=clock, window=2)
    # A window of 2: d and lost are read; lost is skipped with no request and b comes
    # in, so b (20 min) goes before d (40 min); then a (10 min) before d.
    assert [r.message_id for r in fake.requests] == ["b", "a", "d"]
    lost = next(o for o in outcomes if o.message_id == "lost")
    assert isinstance(lost.error, CancellationTooLateError)
    assert fake.status("lost") == "scheduled"


# --- pinned exactly: the plan's text, the skipped message's error, defaults -----------


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
