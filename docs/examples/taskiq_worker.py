"""A taskiq worker that cancels emails, on Redis: the recipe of docs/workers.md.

Run one or more worker processes with ``taskiq worker taskiq_worker:broker``; every
one shares the provider's cap through a RedisRateLimiter on the same Redis.
Settings come from the environment: ``REDIS_URL``, ``MAILPARTNER_API_KEY``,
``MAILPARTNER_BASE_URL``, ``MAILPARTNER_RATE_LIMIT`` (default 2000) and
``MAILPARTNER_RATE_PERIOD`` (its window in seconds, default 60; the tests shorten it).
"""

from __future__ import annotations

import os
from typing import Any

from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from mailpartner_async import AlreadyCancelledError, AsyncMailPartner
from mailpartner_async.redis import RedisRateLimiter

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")

# A Redis stream with a consumer group: a worker acknowledges a task once its result
# is saved, and a task taken by a worker that died is handed to another one (after
# `idle_timeout`, 10 minutes by default). A task may so run twice, never zero times;
# a second cancel of the same id answers code 5, taken as done below. (taskiq-redis's
# ListQueueBroker pops a task before running it: a worker killed mid-task loses it.)
broker = RedisStreamBroker(REDIS_URL, queue_name="mailpartner-cancel").with_result_backend(
    RedisAsyncResultBackend(REDIS_URL, result_ex_time=3600)
)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_client(state: TaskiqState) -> None:
    # One client per worker process, for its whole life, on the fleet's shared budget.
    limiter = RedisRateLimiter(
        REDIS_URL,
        rate_limit=int(os.environ.get("MAILPARTNER_RATE_LIMIT", "2000")),
        period=float(os.environ.get("MAILPARTNER_RATE_PERIOD", "60")),
    )
    state.mailpartner = AsyncMailPartner(rate_limiter=limiter)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def close_client(state: TaskiqState) -> None:
    await state.mailpartner.aclose()


@broker.task
async def cancel_email(
    message_id: str,
    context: Context = TaskiqDepends(),  # noqa: B008 - how taskiq injects the context
) -> dict[str, Any]:
    """Cancel one email; the provider's refusals (not found, too late) fail the task."""
    client: AsyncMailPartner = context.state.mailpartner
    try:
        result = await client.cancel(message_id)
    except AlreadyCancelledError:
        # The job wants the email stopped, and it is: perhaps by an earlier run.
        return {"message_id": message_id, "code": 5, "attempts": None}
    return {"message_id": message_id, "code": int(result.code), "attempts": result.attempts}


@broker.task
async def cancel_campaign(message_ids: list[str]) -> list[str]:
    """Fan a campaign out: one ``cancel_email`` task per id; returns their task ids."""
    return [(await cancel_email.kiq(message_id)).task_id for message_id in message_ids]
