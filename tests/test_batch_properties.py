"""Property: whatever its journal's disk or its clock does, at whatever outcome, a
batch never loses an id silently.

Either ``cancel_many`` returns exactly one outcome per id, or it raises a
``BatchError`` whose outcomes are distinct ids of the input, counted by its
progress, covering every id the server was sent. Run with the sync client on the
in-process fake (threads, no event loop), so that many examples stay fast.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpartner_async import BatchError, CancelOutcome, ScheduledMessage
from mailpartner_async.testing import FakeMailPartner
from tests.support.failures import BrokenClock, disk_full_at


def check_nothing_lost(
    fake: FakeMailPartner, ids: list[str], run: object
) -> list[CancelOutcome] | BatchError:
    assert callable(run)
    try:
        outcomes: list[CancelOutcome] = run()
    except BatchError as error:
        failure = error
    else:
        assert sorted(outcome.message_id for outcome in outcomes) == sorted(ids)
        return outcomes
    given = [outcome.message_id for outcome in failure.outcomes]
    assert len(given) == len(set(given))
    assert set(given) <= set(ids)
    assert failure.progress is not None
    assert failure.progress.done == len(given)
    sent = {request.message_id for request in fake.requests}
    assert sent <= set(given)
    return failure


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 80),
    disk_bytes=st.integers(0, 8_000),
    concurrency=st.integers(1, 6),
)
def test_a_journal_disk_that_fills_at_any_point_loses_no_id(
    count: int, disk_bytes: int, concurrency: int
) -> None:
    fake = FakeMailPartner()
    ids = [fake.schedule(timedelta(hours=1)) for _ in range(count)]
    with tempfile.TemporaryDirectory() as folder, fake.client(rate_limit=None) as client:
        path = Path(folder) / "journal.jsonl"
        with disk_full_at(disk_bytes):
            result = check_nothing_lost(
                fake, ids, lambda: client.cancel_many(ids, journal=path, concurrency=concurrency)
            )
    if isinstance(result, BatchError):
        assert "journal" in str(result)
    else:
        # Everything fitted: the journal holds every final line.
        assert all(outcome.ok for outcome in result)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 60),
    good=st.integers(1, 70),
    naive=st.booleans(),
    concurrency=st.integers(1, 6),
)
def test_a_clock_that_fails_at_any_reading_loses_no_id(
    count: int, good: int, naive: bool, concurrency: int
) -> None:
    fake = FakeMailPartner()
    when = datetime.now(UTC) + timedelta(hours=1)
    ids = [fake.schedule(when) for _ in range(count)]
    messages = [ScheduledMessage(message_id, when) for message_id in ids]
    with fake.client(rate_limit=None) as client:
        result = check_nothing_lost(
            fake,
            ids,
            lambda: client.cancel_many(
                messages,
                clock=BrokenClock(good, "turns naive" if naive else "raises"),
                concurrency=concurrency,
            ),
        )
    # The batch reads the clock once up front, then once per message started.
    if good > count:
        assert isinstance(result, list)
    else:
        assert isinstance(result, BatchError)
        assert "the clock failed" in str(result)
