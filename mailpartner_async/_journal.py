"""The journal of a batch: an append-only file of final outcomes, to resume after a crash.

One JSON object a line. Before a request for an id starts, a ``start`` line is
written; once its outcome is final, a ``final`` line. Each line goes to the file in
one ``write`` on a descriptor opened with ``O_APPEND`` (no buffer of ours in
between), so a ``kill -9`` at any moment loses at most the lines not yet written:
the answers of the calls in flight. On reopening:

- ids with a ``final`` line are skipped (their outcome is in the journal);
- ids with a ``start`` line and no ``final`` one may have been cancelled by the
  lost call: if the retry answers code 5, that counts as cancelled by us, as the
  client's retry rule does within one call;
- a torn last line (no newline) is cut off before anything is appended, and a
  line that does not parse is ignored: the file never stops being readable.

An advisory lock (``flock``) keeps two runs from sharing one journal.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path
from typing import Any, Self

from ._exceptions import AlreadyCancelledError, APIError, ConfigurationError
from ._models import BatchProgress, CancelCode, CancelOutcome, CancelResult, outcome_category

__all__ = ["Journal", "is_final"]

# Codes after which asking again cannot change the answer.
_FINAL_CODES = frozenset(
    {
        CancelCode.MESSAGE_ID_REQUIRED,
        CancelCode.MESSAGE_NOT_FOUND,
        CancelCode.ALREADY_CANCELLED,
        CancelCode.TOO_LATE,
        CancelCode.ALREADY_SENT,
    }
)


def is_final(outcome: CancelOutcome) -> bool:
    """True when a rerun would get the same answer: cancelled, or a final control code.

    Connection errors, rate limits, unexpected answers and key errors are not
    final: a rerun tries those ids again.
    """
    error = outcome.error
    return error is None or (isinstance(error, APIError) and error.code in _FINAL_CODES)


class Journal:
    """Where a batch records its final outcomes, and what an earlier run recorded.

    Pass it to ``cancel_iter``/``cancel_many`` (``journal=``); the batch opens it if
    needed. ``previous`` counts the final outcomes found when it was opened.

    Example::

        with Journal("rescue.jsonl") as journal:
            outcomes = client.cancel_many(messages, journal=journal)
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.previous = BatchProgress()
        self._final: set[str] = set()
        self._started_before: set[str] = set()
        self._fd: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self) -> Self:
        """Read what an earlier run recorded, then hold the file for appending."""
        if self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open the journal {self.path}: {exc.strerror}"
            ) from None
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            raise ConfigurationError(f"the journal {self.path} is in use by another run") from None
        self._load(fd)
        self._fd = fd
        return self

    def _load(self, fd: int) -> None:
        with open(fd, "rb", closefd=False) as stream:
            data = stream.read()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            os.ftruncate(fd, complete)  # a torn last line: the write it began never finished
        counts: dict[str, int] = {}
        for line in data[:complete].splitlines():
            record = _parse(line)
            if record is None:
                continue
            message_id = record["id"]
            if record["event"] == "start":
                self._started_before.add(message_id)
            elif message_id not in self._final:
                self._final.add(message_id)
                category = record.get("outcome", "failed")
                counts[category] = counts.get(category, 0) + 1
        known = {field.name for field in dataclasses.fields(BatchProgress)}
        counts = {name: count for name, count in counts.items() if name in known}
        self.previous = BatchProgress(done=sum(counts.values()), **counts)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # releases the lock
                self._fd = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def is_final(self, message_id: str) -> bool:
        """True when an earlier run (or this one) recorded a final outcome for the id."""
        return message_id in self._final

    def record_start(self, message_id: str) -> None:
        """Note that a request for the id may reach the server from now on."""
        self._append({"event": "start", "id": message_id})

    def settle(self, outcome: CancelOutcome) -> CancelOutcome:
        """The outcome as this run reports it; recorded when final.

        A code 5 for an id an earlier run had started is that run's cancel: it is
        reported (and recorded) as cancelled, with ``code=ALREADY_CANCELLED``.
        """
        error = outcome.error
        if isinstance(error, AlreadyCancelledError) and outcome.message_id in self._started_before:
            result = CancelResult(
                success=True,
                code=CancelCode.ALREADY_CANCELLED,
                message=error.message,
                message_id=outcome.message_id,
            )
            outcome = CancelOutcome(outcome.message_id, result=result)
        if is_final(outcome):
            self._append(_final_record(outcome))
            self._final.add(outcome.message_id)
        return outcome

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        with self._lock:
            if self._fd is None:
                raise ConfigurationError(f"the journal {self.path} is closed")
            os.write(self._fd, line)  # one write: a line is whole or absent
            if self.fsync:
                os.fsync(self._fd)


def _final_record(outcome: CancelOutcome) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event": "final",
        "id": outcome.message_id,
        "outcome": outcome_category(outcome),
    }
    if outcome.result is not None:
        record["code"] = int(outcome.result.code)
    elif isinstance(outcome.error, APIError):
        record["code"] = int(outcome.error.code)
    return record


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("id"), str)
        or record.get("event") not in ("start", "final")
    ):
        return None
    return record


def _lock(fd: int) -> None:
    """Take the journal's advisory lock, or raise ``OSError`` when another run has it.

    POSIX only: imported here, so that importing the SDK works on every platform.
    """
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
