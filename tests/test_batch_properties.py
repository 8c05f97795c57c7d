"""Property: whatever its journal's disk or its clock does, at whatever outcome, a
batch never loses an id silently.

Either ``cancel_many`` returns exactly one outcome per id, or it raises a
``BatchError`` whose outcomes are distinct ids of the input, counted by its
progress, covering every id the server was sent. Run with the sync client on the
in-process fake (threads, no event loop), so that many examples stay fast.
"""

from __future__ import annotations

import resource
import signal
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpartner_async import BatchError, CancelOutcome, ScheduledMessage
from mailpartner_async.testing import FakeMailPartner


@pytest.fixture
def file_size_limit() -> Iterator[None]:
    """Writes past a soft file-size limit fail with EFBIG, as on a full disk."""
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


class FailingClock:
    """Right ``good`` times, then raises or turns naive."""

    def __init__(self, good: int, naive: bool) -> None:
        self.left = good
        self.naive = naive

    def __call__(self) -> datetime:
        self.left -= 1
        if self.left >= 0:
            return datetime.now(UTC)
        if self.naive:
            return datetime.now()
        raise OSError("the time source went away")


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


@pytest.mark.usefixtures("file_size_limit")
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
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (disk_bytes, hard))
        try:
            result = check_nothing_lost(
                fake, ids, lambda: client.cancel_many(ids, journal=path, concurrency=concurrency)
            )
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, hard))
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
                messages, clock=FailingClock(good, naive), concurrency=concurrency
            ),
        )
    # The batch reads the clock once up front, then once per message started.
    if good > count:
        assert isinstance(result, list)
    else:
        assert isinstance(result, BatchError)
        assert "the clock failed" in str(result)
