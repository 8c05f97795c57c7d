"""The sync twins' structured concurrency: a task group of threads, a cancel scope.

What anyio's task group and cancel scope are to the async source, for the code
generated from it into ``_sync/``: :mod:`mailpartner_async._compat` names them beside
their async pairs (``AsyncTaskGroup``/``TaskGroup``, ``AsyncCancelScope``/``CancelScope``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["CancelScope", "TaskGroup"]


class CancelScope:
    """A thread cannot be cancelled: :meth:`cancel` only records that it was asked."""

    def __init__(self, *, shield: bool = False) -> None:
        self.cancel_called = False

    def __enter__(self) -> CancelScope:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def cancel(self) -> None:
        self.cancel_called = True


class TaskGroup:
    """One thread per :meth:`start_soon`; leaving the block joins them and raises
    what they raised as an ``ExceptionGroup``, as an anyio task group does."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[Exception] = []

    def __enter__(self) -> TaskGroup:
        return self

    def start_soon(self, func: Callable[[], object]) -> None:
        def run() -> None:
            try:
                func()
            except Exception as exc:
                self._errors.append(exc)

        thread = threading.Thread(target=run, name=f"mailpartner-worker-{len(self._threads)}")
        self._threads.append(thread)
        thread.start()

    def __exit__(self, *exc_info: object) -> None:
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise ExceptionGroup("a worker raised", self._errors)
