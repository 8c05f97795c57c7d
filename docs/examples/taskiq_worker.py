"""A taskiq worker that cancels emails, on Redis: the recipe of docs/workers.md.

Run one or more worker processes with ``taskiq worker taskiq_worker:broker``; every
one shares the provider's cap through a RedisRateLimiter on the same Redis.
Settings come from the environment: ``REDIS_URL``, ``MAILPARTNER_API_KEY``,
``MAILPARTNER_BASE_URL``, ``MAILPARTNER_RATE_LIMIT`` (default 2000 a minute).
"""

from __future__ import annotations

import os
from typing import Any

from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

from mailpartner_async import AlreadyCancelledError, AsyncMailPartner
from mailpartner_async.redis import RedisRateLimiter

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")

# A worker waits for tasks in a blocking BRPOP: redis-py's default socket time-out
# (5 s) would end that wait with an error and stop the worker when the queue is idle.
broker = ListQueueBroker(
    REDIS_URL, queue_name="mailpartner-cancel", socket_timeout=None
).with_result_backend(RedisAsyncResultBackend(REDIS_URL, result_ex_time=3600))


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_client(state: TaskiqState) -> None:
    # One client per worker process, for its whole life, on the fleet's shared budget.
    limiter = RedisRateLimiter(
        REDIS_URL, rate_limit=int(os.environ.get("MAILPARTNER_RATE_LIMIT", "2000"))
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
