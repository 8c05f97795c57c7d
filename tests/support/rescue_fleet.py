"""A fleet of rescue worker processes (tests/support/rescue_worker.py) for the fleet tests,
and the checks every fleet run must pass, read from the ledger and from the fake.

Numbers are scaled down: the clock runs :data:`SPEED` times fast, so the rate window
(:data:`PERIOD`, real seconds) is one simulated minute, and each address may start
:data:`BUDGET` cancels in it, as the fake allows per address.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

from mailpartner_async import CancelOutcome, ScheduledMessage
from mailpartner_async.redis import RedisRescue
from mailpartner_async.testing import FakeMailPartner
from tests.support.fake_http import Answer
from tests.support.rescue_worker import START, SharedClock

__all__ = [
    "BUDGET",
    "LEASE",
    "LIMITER_PERIOD",
    "PERIOD",
    "SPEED",
    "Fleet",
    "campaign",
    "check_ledger",
    "fleet",
    "wait_until",
]

SPEED = 30.0
PERIOD = 60 / SPEED
# The limiters' window, 5 % longer than the fake's: a start reserved in Redis reaches
# the fake some milliseconds later, by a jitter that does not shrink with the clock.
# Over the provider's 60 s it is a thousandth of the window; over 2 s it is more.
LIMITER_PERIOD = PERIOD * 1.05
BUDGET = 20
LEASE = 2.0
CONCURRENCY = 4


def campaign(prefix: str, count: int, seed: int = 7) -> list[ScheduledMessage]:
    """``count`` messages sent between 5.5 and 12 simulated minutes after ``START``: their
    cut-offs fall 1 to 14 real seconds after the fleet starts."""
    chance = random.Random(seed)
    return [
        ScheduledMessage(f"{prefix}-{n}", START + timedelta(minutes=chance.uniform(5.5, 12)))
        for n in range(count)
    ]


class Fleet:
    """Worker processes started together on one :class:`SharedClock`."""

    def __init__(self, processes: list[subprocess.Popen[str]], clock: SharedClock) -> None:
        self.processes = processes
        self.clock = clock

    def go(self) -> None:
        self.clock.origin = time.time()
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(f"go {self.clock.origin!r}\n")
            process.stdin.flush()

    def kill(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(timeout=10)

    def results(self, *, skip: Sequence[int] = ()) -> tuple[list[dict[str, int]], list[str]]:
        """Each finished worker's progress, and every worker's log (stderr)."""
        progress: list[dict[str, int]] = []
        logs: list[str] = []
        for index, process in enumerate(self.processes):
            out, err = process.communicate(timeout=90)
            logs.append(err)
            if index in skip:
                continue
            assert process.returncode == 0, err
            progress.append(json.loads(out.strip().splitlines()[-1]))
        return progress, logs


@contextmanager
def fleet(
    clock: SharedClock, workers: Sequence[dict[str, object]], **shared: object
) -> Iterator[Fleet]:
    """Start one process per entry of ``workers`` (each merged over ``shared``): every
    one has said ``ready`` when this yields; :meth:`Fleet.go` starts them."""
    processes = []
    for worker in workers:
        config: dict[str, object] = {
            "lease": LEASE,
            "rate": BUDGET,
            "period": LIMITER_PERIOD,
            "speed": clock.speed,
        }
        config |= {"concurrency": CONCURRENCY, **shared, **worker}
        processes.append(
            subprocess.Popen(  # noqa: S603 - our own worker, fixed arguments
                [sys.executable, "-m", "tests.support.rescue_worker", json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line == "ready", process.stderr.read() if process.stderr else line
        yield Fleet(processes, clock)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


def wait_until(test: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, "the fleet made no progress in time"
        time.sleep(0.05)


def check_ledger(
    rescue: RedisRescue,
    fake: FakeMailPartner,
    messages: Sequence[ScheduledMessage],
    answers: Sequence[Answer],
) -> list[CancelOutcome]:
    """What every run must end with: one final outcome per id in the ledger, none left,
    no id answered 200 twice, and the ledger agreeing with what the fake did."""
    outcomes = list(rescue.outcomes())
    assert sorted(o.message_id for o in outcomes) == sorted(m.message_id for m in messages)
    status = rescue.status()
    assert (status.submitted, status.left, status.in_flight) == (len(messages), 0, 0)
    assert status.final.done == len(messages)
    ours = {m.message_id for m in messages}
    twice = Counter(a.message_id for a in answers if a.status == 200 and a.message_id in ours)
    assert [message_id for message_id, count in twice.items() if count > 1] == []
    for outcome in outcomes:  # stopped in the ledger exactly when the fake cancelled it
        assert outcome.stopped == (fake.status(outcome.message_id) == "cancelled"), outcome
    return outcomes
