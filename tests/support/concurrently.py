"""The test side's paired names: run calls at once, and sleep, the async way and the
sync way.

Tests under ``tests/_async/`` call ``async_run_together`` and ``async_sleep``; their
generated sync twins call ``run_together`` and ``sleep``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

async_sleep = anyio.sleep
sleep = time.sleep


async def async_run_together(*calls: Callable[[], Coroutine[Any, Any, object]]) -> None:
    """Await every call at once, in one task group."""
    async with anyio.create_task_group() as group:
        for call in calls:
            group.start_soon(call)


def run_together(*calls: Callable[[], object]) -> None:
    """Run every call at once, each in a thread; return once all have returned."""
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise ExceptionGroup(
            "a call run together failed", [e for e in errors if isinstance(e, Exception)]
        )
