"""One worker process of the fleet tests: its own client on a shared RedisRateLimiter.

    python -m tests.support.redis_worker URL KEY RATE PERIOD FALLBACK BASE_URL ID...

(``FALLBACK`` 0: no ``fallback_rate_limit``, each member paces at its share.)

Prints ``ready``, waits for a line on stdin (so the test starts every worker at
once), cancels the ids, then prints one JSON line per outcome. Log records go to
stderr.
"""

from __future__ import annotations

import json
import logging
import sys

import anyio

from mailpartner_async import AsyncMailPartner
from mailpartner_async.redis import RedisRateLimiter


async def run(argv: list[str]) -> None:
    url, key, rate, period, fallback, base_url, *ids = argv
    limiter = RedisRateLimiter(  # FALLBACK 0: each member's share of the fleet
        url,
        rate_limit=int(rate),
        key=key,
        period=float(period),
        fallback_rate_limit=int(fallback) or None,
    )
    async with AsyncMailPartner("k", base_url=base_url, rate_limiter=limiter) as client:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        for outcome in await client.cancel_many(ids):
            print(json.dumps({"message_id": outcome.message_id, "ok": outcome.ok}), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    anyio.run(run, sys.argv[1:])
