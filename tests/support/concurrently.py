"""Run calls at once, the async way and the sync way: the test side's paired names.

Tests under ``tests/_async/`` call ``async_run_together``; their generated sync
twins call ``run_together``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any

import anyio


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
