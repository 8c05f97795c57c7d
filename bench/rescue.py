"""The rescue bench: how many ids a batch cancels in time, by order, against the fake.

A simulated campaign (``--ids`` emails, sends spread at random over ``--minutes``)
is cancelled against :class:`~mailpartner_async.testing.FakeMailPartner` whose clock
runs ``--speed`` times faster than real time; the client's rate limit is the
provider's 2000 a minute scaled by the same factor, so the batch sees the real
race between its pace and the cut-offs. Three numbers per campaign:

- file order: plain ids in the order of the file (a random order here), as a
  batch without send times runs them;
- deadline first: the same messages as ``ScheduledMessage`` items;
- optimum: earliest deadline first at an exact even pace, computed offline
  (``plan_rescue``), the most any order can cancel with one request per id.

    python bench/rescue.py [--ids 20000] [--minutes 15] [--speed 10]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import anyio

from mailpartner_async import ScheduledMessage, plan_rescue
from mailpartner_async._core.models import BatchItem
from mailpartner_async.testing import FakeMailPartner

RATE_LIMIT = 2000
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class ScaledClock:
    """Simulated time: ``START`` plus ``speed`` times the real time since creation."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._origin = time.monotonic()

    def restart(self) -> None:
        """Start simulated time again at ``START``."""
        self._origin = time.monotonic()

    def __call__(self) -> datetime:
        return START + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)


def campaign(count: int, minutes: float, seed: int) -> list[ScheduledMessage]:
    chance = random.Random(seed)
    return [
        ScheduledMessage(f"m-{n}", START + timedelta(seconds=chance.uniform(0, minutes * 60)))
        for n in range(count)
    ]


async def cancelled_in_time(
    messages: list[ScheduledMessage], items: Sequence[BatchItem], speed: float
) -> tuple[int, float]:
    clock = ScaledClock(speed)
    fake = FakeMailPartner(clock=clock)
    for message in messages:
        fake.schedule(message.send_at, message_id=message.message_id)
    clock.restart()  # the campaign starts now, once the fake is filled
    started = time.monotonic()
    async with fake.async_client(rate_limit=int(RATE_LIMIT * speed)) as client:
        async for _ in client.cancel_iter(items, concurrency=20, clock=clock):
            pass
    elapsed = time.monotonic() - started
    done = sum(fake.status(m.message_id) == "cancelled" for m in messages)
    return done, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    messages = campaign(args.ids, args.minutes, args.seed)
    optimum = plan_rescue(messages, now=START, rate_limit=RATE_LIMIT).reachable
    file_order, file_seconds = anyio.run(
        cancelled_in_time, messages, [m.message_id for m in messages], args.speed
    )
    deadline, deadline_seconds = anyio.run(cancelled_in_time, messages, messages, args.speed)
    print(
        f"{args.ids} ids, sends spread over {args.minutes:g} min, {RATE_LIMIT}/min, "
        f"clock x{args.speed:g}\n"
    )
    print("| order | cancelled in time | of optimum | real seconds |")
    print("| --- | ---: | ---: | ---: |")
    for name, count, seconds in (
        ("file order", file_order, file_seconds),
        ("deadline first", deadline, deadline_seconds),
    ):
        print(f"| {name} | {count} | {count / optimum:.1%} | {seconds:.1f} |")
    print(f"| optimum (offline) | {optimum} | 100.0% | - |")


if __name__ == "__main__":
    main()
