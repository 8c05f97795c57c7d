"""One worker process of the fleet rescue tests: an AsyncRedisRescue working with its own
client, leaving from its own loopback address, on its own RedisRateLimiter key.

    python -m tests.support.rescue_worker JSON

``JSON`` holds ``redis``, ``campaign``, ``lease``, ``address``, ``base_url``, ``pool``
(the limiter's key), ``rate`` and ``period`` (the limiter's budget), ``speed`` (of the
shared accelerated clock), ``concurrency``, and optionally ``backend`` (``asyncio``, the
default, or ``trio``) and ``transport`` (the client's, ``httpx`` by default). The fleet
bench (``bench/fleet_rescue.py``) runs the same worker.

Prints ``ready``, waits for a line ``go ORIGIN`` on stdin (so the test starts every
worker at once, on one clock: :class:`SharedClock` at ``ORIGIN``), works until the
campaign has nothing left, then prints its progress as one JSON line. Log records go
to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from datetime import UTC, datetime, timedelta

import anyio

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class SharedClock:
    """Simulated time, ``START`` plus ``speed`` times the wall time since ``origin``
    (a ``time.time()``): every process given the same two numbers reads the same time."""

    def __init__(self, origin: float, speed: float) -> None:
        self.origin = origin
        self.speed = speed

    def __call__(self) -> datetime:
        return START + timedelta(seconds=(time.time() - self.origin) * self.speed)

    def real_seconds(self, simulated: timedelta) -> float:
        """How many real seconds ``simulated`` takes on this clock."""
        return simulated.total_seconds() / self.speed


async def run(config: dict[str, object]) -> None:
    from mailpartner_async import AsyncMailPartner
    from mailpartner_async.redis import AsyncRedisRescue, RedisRateLimiter

    limiter = RedisRateLimiter(
        str(config["redis"]),
        rate_limit=int(str(config["rate"])),
        key=str(config["pool"]),
        period=float(str(config["period"])),
    )
    print("ready", flush=True)
    line = await anyio.to_thread.run_sync(sys.stdin.readline)
    clock = SharedClock(float(line.split()[1]), float(str(config["speed"])))
    async with (
        AsyncRedisRescue(
            str(config["redis"]),
            campaign=str(config["campaign"]),
            lease=float(str(config["lease"])),
            clock=clock,
        ) as rescue,
        AsyncMailPartner(
            "test-key",
            base_url=str(config["base_url"]),
            rate_limiter=limiter,
            local_address=str(config["address"]),
            max_concurrency=int(str(config["concurrency"])),
            transport=str(config.get("transport", "httpx")),  # type: ignore[arg-type]
        ) as client,
    ):
        progress = await rescue.work(client)
    print(json.dumps(dataclasses.asdict(progress)), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = json.loads(sys.argv[1])
    anyio.run(run, settings, backend=str(settings.get("backend", "asyncio")))
