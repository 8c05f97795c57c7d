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

import os
import threading
from pathlib import Path
from typing import Any, Self

from ._core.errors import ConfigurationError
from ._core.journal import JournalState, encode_record, final_record, is_final
from ._core.models import BatchProgress, CancelOutcome

__all__ = ["Journal", "is_final"]


class Journal:
    """Where a batch records its final outcomes, and what an earlier run recorded.

    Pass it to ``cancel_iter``/``cancel_many`` (``journal=``); the batch opens it if
    needed. ``previous`` counts the final outcomes found when it was opened. Opens
    and closes pair up: the file is closed by the last :meth:`close`, so batches
    sharing one journal never close it under each other.

    Example::

        with Journal("rescue.jsonl") as journal:
            outcomes = client.cancel_many(messages, journal=journal)
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._state = JournalState()
        self._fd: int | None = None
        self._users = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @property
    def previous(self) -> BatchProgress:
        """The final outcomes an earlier run recorded, counted when the journal opened."""
        return self._state.previous

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self) -> Self:
        """Read what an earlier run recorded, then hold the file for appending."""
        with self._lock:
            if self._fd is None:
                self._fd = self._open_file()
            self._users += 1
        return self

    def _open_file(self) -> int:
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
        try:
            self._state = JournalState.read(_complete_lines(fd))
        except OSError as exc:
            os.close(fd)
            raise ConfigurationError(
                f"cannot read the journal {self.path}: {exc.strerror}"
            ) from None
        return fd

    def close(self) -> None:
        """Close the file once every :meth:`open` has its ``close`` (extra closes do nothing)."""
        with self._lock:
            self._users = max(self._users - 1, 0)
            if self._users == 0 and self._fd is not None:
                os.close(self._fd)  # releases the lock
                self._fd = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def is_final(self, message_id: str) -> bool:
        """True when an earlier run (or this one) recorded a final outcome for the id."""
        return message_id in self._state.final

    def record_start(self, message_id: str) -> None:
        """Note that a request for the id may reach the server from now on.

        Raises ``UnicodeEncodeError`` for an id the file cannot hold, and
        ``OSError`` when the write fails (a full disk): nothing is sent then.
        """
        self._append({"event": "start", "id": message_id})

    def settle(self, outcome: CancelOutcome) -> CancelOutcome:
        """The outcome as this run reports it; recorded when final.

        A code 5 for an id an earlier run had started is that run's cancel: it is
        reported (and recorded) as cancelled, with ``code=ALREADY_CANCELLED``.
        """
        outcome = self._state.settled(outcome)
        if is_final(outcome):
            self._append(final_record(outcome))
            self._state.final.add(outcome.message_id)
        return outcome

    def _append(self, record: dict[str, Any]) -> None:
        line = encode_record(record)
        with self._lock:
            if self._fd is None:
                raise ConfigurationError(f"the journal {self.path} is closed")
            written = os.write(self._fd, line)  # one write: a line is whole or absent
            if written != len(line):
                raise OSError(f"short write to the journal ({written} of {len(line)} bytes)")
            if self.fsync:
                os.fsync(self._fd)


def _complete_lines(fd: int) -> list[bytes]:
    """The journal's whole lines; a torn last line (its write never finished) is cut off."""
    with open(fd, "rb", closefd=False) as stream:
        data = stream.read()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        os.ftruncate(fd, complete)
    return data[:complete].splitlines()


def _lock(fd: int) -> None:
    """Take the journal's advisory lock, or raise ``OSError`` when another run has it.

    POSIX only: imported here, so that importing the SDK works on every platform.
    """
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
