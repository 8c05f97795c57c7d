"""A batch whose own machinery fails (journal, clock, cut-off arithmetic, a crashed
worker) never ends silently: every id it took gets exactly one outcome, and an early
end raises a ``BatchError`` that carries them.

Run on asyncio and trio; the sync twin is generated from this file. The journal's
disk is filled for real: a soft ``RLIMIT_FSIZE`` makes its writes fail with
``EFBIG`` past a given size, as a full disk makes them fail with ``ENOSPC``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailpartner_async import (
    BatchError,
    CancellationTooLateError,
    CancelOutcome,
    ConfigurationError,
    Journal,
    MailPartnerError,
    ScheduledMessage,
)
from mailpartner_async.testing import FakeClock, FakeMailPartner
from tests.support.concurrently import async_run_together
from tests.support.failures import BrokenClock, disk_full_at


@pytest.fixture
def fake() -> FakeMailPartner:
    return FakeMailPartner()


def schedule(fake: FakeMailPartner, count: int, hours: float = 1.0) -> list[str]:
    return [fake.schedule(timedelta(hours=hours)) for _ in range(count)]


def sent_ids(fake: FakeMailPartner) -> list[str | None]:
    return [request.message_id for request in fake.requests]


def check_one_outcome_each(outcomes: list[CancelOutcome], ids: list[str]) -> None:
    """No id twice, no id that was not given."""
    seen = [outcome.message_id for outcome in outcomes]
    assert len(seen) == len(set(seen))
    assert set(seen) <= set(ids)


@pytest.mark.anyio
async def test_a_full_journal_disk_ends_the_batch_with_every_outcome_it_had(
    fake: FakeMailPartner, tmp_path: Path
) -> None:
    ids = schedule(fake, 3000)
    path = tmp_path / "journal.jsonl"
    async with fake.async_client(rate_limit=None) as client:
        with disk_full_at(20_000), pytest.raises(BatchError) as caught:
            await client.cancel_many(ids, journal=path, concurrency=8)
    error = caught.value
    outcomes = error.outcomes
    check_one_outcome_each(outcomes, ids)
    assert 0 < len(outcomes) < len(ids)
    assert error.progress is not None
    assert error.progress.done == len(outcomes)
    assert "the journal could not" in str(error)
    assert isinstance(error.__cause__, OSError)
    # Every request the fake got belongs to an id with an outcome: none is lost.
    answered = {outcome.message_id for outcome in outcomes}
    assert set(sent_ids(fake)) <= answered
    # An id whose start could not be written was not sent.
    not_sent = [o for o in outcomes if o.error is not None and "not sent" in o.error.message]
    for outcome in not_sent:
        assert outcome.message_id not in sent_ids(fake)


@pytest.mark.anyio
async def test_an_id_the_journal_cannot_hold_is_not_sent_and_the_others_are(
    fake: FakeMailPartner, tmp_path: Path
) -> None:
    first, last = schedule(fake, 2)
    odd = "\udcff"  # what os.fsdecode makes of the byte 0xff on the command line
    async with fake.async_client() as client:
        outcomes = await client.cancel_many([first, odd, last], journal=tmp_path / "journal.jsonl")
    assert [outcome.message_id for outcome in outcomes] == [first, odd, last]
    assert outcomes[0].ok
    assert outcomes[2].ok
    error = outcomes[1].error
    assert isinstance(error, MailPartnerError)
    assert error.message.startswith("not sent: the journal cannot record this id")
    assert sorted(map(str, sent_ids(fake))) == sorted([first, last])


@pytest.mark.anyio
async def test_two_batches_sharing_one_journal_each_get_every_outcome(
    fake: FakeMailPartner, tmp_path: Path
) -> None:
    ids = schedule(fake, 400)
    halves = [ids[:200], ids[200:]]
    journal = Journal(tmp_path / "journal.jsonl")
    results: list[list[CancelOutcome]] = []
    async with fake.async_client(rate_limit=None) as client:

        async def first() -> None:
            results.append(await client.cancel_many(halves[0], journal=journal, concurrency=4))

        async def second() -> None:
            results.append(await client.cancel_many(halves[1], journal=journal, concurrency=4))

        await async_run_together(first, second)
    assert sorted(len(result) for result in results) == [200, 200]
    assert all(outcome.ok for result in results for outcome in result)
    assert not journal.is_open
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    finals = {json.loads(line)["id"] for line in lines if '"final"' in line}
    assert finals == set(ids)


@pytest.mark.anyio
@pytest.mark.parametrize("failure", ["raises", "turns naive"])
async def test_a_clock_that_fails_mid_batch_ends_it_with_every_outcome(
    fake: FakeMailPartner, failure: str
) -> None:
    ids = schedule(fake, 50)
    messages = [ScheduledMessage(i, datetime.now(UTC) + timedelta(hours=1)) for i in ids]
    async with fake.async_client(rate_limit=None) as client:
        with pytest.raises(BatchError) as caught:
            await client.cancel_many(
                messages, clock=BrokenClock(11, failure), concurrency=1, window=1
            )
    error = caught.value
    outcomes = error.outcomes
    check_one_outcome_each(outcomes, ids)
    # One reading checks the clock up front; then one per message started.
    assert len(outcomes) == 11
    assert all(outcome.ok for outcome in outcomes[:10])
    last = outcomes[10].error
    assert last is not None
    assert last.message.startswith("not sent: the clock failed")
    assert "the clock failed" in str(error)
    assert sent_ids(fake) == ids[:10]
    cause = error.__cause__
    expected = RuntimeError if failure == "raises" else ConfigurationError
    assert isinstance(cause, expected)


@pytest.mark.anyio
async def test_a_clock_that_raises_at_once_is_a_configuration_error(
    fake: FakeMailPartner,
) -> None:
    async with fake.async_client() as client:
        with pytest.raises(ConfigurationError, match="the clock raised RuntimeError"):
            client.cancel_iter(schedule(fake, 1), clock=BrokenClock(0, "raises"))


@pytest.mark.anyio
async def test_a_send_time_in_year_1_is_too_late_not_an_overflow(
    fake: FakeMailPartner,
) -> None:
    late = ScheduledMessage("1", datetime(1, 1, 1, 0, 1, tzinfo=UTC))
    fine = fake.schedule(timedelta(hours=1))
    async with fake.async_client() as client:
        outcomes = await client.cancel_many(
            [ScheduledMessage(fine, datetime.now(UTC) + timedelta(hours=1)), late]
        )
    assert [outcome.message_id for outcome in outcomes] == [fine, "1"]
    assert outcomes[0].ok
    assert isinstance(outcomes[1].error, CancellationTooLateError)
    assert sent_ids(fake) == [fine]


class Incomparable(datetime):
    """An aware send time that cannot be ordered: the deadline queue's comparisons fail."""

    def __lt__(self, other: object) -> bool:
        raise TypeError("this send time cannot be ordered")

    def __gt__(self, other: object) -> bool:
        raise TypeError("this send time cannot be ordered")


@pytest.mark.anyio
async def test_a_crashed_worker_fails_its_run_loudly(fake: FakeMailPartner) -> None:
    ids = schedule(fake, 3)
    when = datetime.now(UTC) + timedelta(hours=1)
    broken = Incomparable(when.year, when.month, when.day, when.hour, tzinfo=UTC)
    messages = [
        ScheduledMessage(ids[0], when),
        ScheduledMessage(ids[1], broken),
        ScheduledMessage(ids[2], when),
    ]
    async with fake.async_client() as client:
        with pytest.raises(BatchError) as caught:
            await client.cancel_many(messages, concurrency=1)
    assert "a worker crashed" in str(caught.value)
    assert isinstance(caught.value.__cause__, TypeError)
    check_one_outcome_each(caught.value.outcomes, ids)


@pytest.mark.anyio
async def test_cancel_many_with_journal_gaps_returns_the_outcomes_it_has(
    fake: FakeMailPartner, tmp_path: Path
) -> None:
    ids = schedule(fake, 5)
    path = tmp_path / "journal.jsonl"
    async with fake.async_client() as client:
        await client.cancel_many(ids[1:3], journal=path)
        outcomes = await client.cancel_many(ids, journal=path)
    assert [outcome.message_id for outcome in outcomes] == [ids[0], *ids[3:]]
    assert all(outcome.ok for outcome in outcomes)


@pytest.mark.anyio
async def test_a_fake_clock_drives_the_cut_off(fake: FakeMailPartner) -> None:
    clock = FakeClock()
    fake_with_clock = FakeMailPartner(clock=clock)
    soon = fake_with_clock.schedule(timedelta(minutes=6))
    async with fake_with_clock.async_client() as client:
        batch = client.cancel_iter(
            [ScheduledMessage(soon, clock() + timedelta(minutes=6))], clock=clock
        )
        clock.advance(timedelta(minutes=2))
        outcomes = [outcome async for outcome in batch]
    assert isinstance(outcomes[0].error, CancellationTooLateError)
    assert fake_with_clock.requests == []
