"""One fake hammered by 8 threads through one sync client: no lost or doubled state."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from mailpartner_async import AlreadyCancelledError, CancelCode
from mailpartner_async.testing import FakeMailPartner

from .conftest import NOW

THREADS = 8


def _run_threads(target: Callable[[int], None], count: int = THREADS) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            target(index)
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors


def _yielding_clock() -> datetime:
    # A clock that lets other threads run, as a real clock call may. The fake reads
    # it between looking an id up and registering it: without the fake's lock, two
    # threads would both find an unknown id missing and both cancel it.
    time.sleep(0.0001)
    return NOW


def test_each_message_is_cancelled_exactly_once_across_threads() -> None:
    fake = FakeMailPartner(clock=_yielding_clock, schedule_unknown=True)
    scheduled = [fake.schedule(timedelta(hours=1)) for _ in range(75)]
    ids = [i for pair in zip(scheduled, (f"u{n}" for n in range(75)), strict=True) for i in pair]
    codes: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()

    with fake.client(max_concurrency=THREADS) as client:

        def cancel_all(index: int) -> None:
            # Same order in every thread: they race for each message at once.
            for message_id in ids:
                try:
                    code = int(client.cancel(message_id).code)
                except AlreadyCancelledError as exc:
                    code = exc.code
                with lock:
                    codes[message_id, code] += 1

        _run_threads(cancel_all)

    for message_id in ids:
        assert codes[message_id, CancelCode.CANCELLED] == 1
        assert codes[message_id, CancelCode.ALREADY_CANCELLED] == THREADS - 1
        assert fake.status(message_id) == "cancelled"
    requests = fake.requests
    assert len(requests) == THREADS * len(ids)
    assert Counter(r.code for r in requests) == {200: len(ids), 5: (THREADS - 1) * len(ids)}


def test_schedule_from_threads_never_hands_out_an_id_twice() -> None:
    fake = FakeMailPartner(clock=_yielding_clock)
    ids: list[str] = []
    lock = threading.Lock()

    def schedule_many(index: int) -> None:
        mine = [fake.schedule(timedelta(hours=1)) for _ in range(100)]
        with lock:
            ids.extend(mine)

    _run_threads(schedule_many)
    assert len(set(ids)) == len(ids) == THREADS * 100


def test_faults_are_consumed_exactly_once_across_threads() -> None:
    fake = FakeMailPartner()
    fake.fail_next(50, "http_503")

    def hit(index: int) -> None:
        for _ in range(20):
            fake.handle("GET", "/v1/message-cancel", [("apiKey", "test-key")])

    _run_threads(hit)
    statuses = Counter(r.status for r in fake.requests)
    assert statuses == {503: 50, 400: THREADS * 20 - 50}
