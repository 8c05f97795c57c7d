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
  line that is not a record of this version is ignored and counted (``ignored``):
  the file never stops being readable.

A new journal's first line names what it was made for (``target``: the base URL,
a fingerprint of the key, sandbox or real); opened for another target, it is
refused unless ``any_target=True``. A path that is a symbolic link, a file that is
not a regular one, and a file whose first line is no journal record are refused
before anything is written. An advisory lock (``flock``) keeps two runs from
sharing one journal.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any, Self

from ._core.errors import ConfigurationError
from ._core.journal import (
    JournalState,
    JournalTarget,
    encode_record,
    final_record,
    header_record,
    is_final,
)
from ._core.models import BatchProgress, CancelOutcome

__all__ = ["Journal", "JournalTarget", "is_final"]


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

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = False,
        target: JournalTarget | None = None,
        any_target: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.target = target
        self.any_target = any_target
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
    def ignored(self) -> int:
        """How many lines, when the journal opened, were not records it knows (skipped)."""
        return self._state.ignored

    @property
    def recorded_target(self) -> JournalTarget | None:
        """What the journal says it was made for (None for a journal that names nothing)."""
        return self._state.target

    def outcome_of(self, message_id: str) -> str | None:
        """The :class:`BatchProgress` count of the id's final outcome; None when not final."""
        return self._state.final.get(message_id)

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
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            if os.path.islink(self.path):
                raise ConfigurationError(
                    f"the journal {self.path} is a symbolic link: give the path of a "
                    "journal file itself (a journal never writes through a link)"
                ) from None
            raise ConfigurationError(
                f"cannot open the journal {self.path}: {exc.strerror}"
            ) from None
        try:
            self._state = self._checked(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _checked(self, fd: int) -> JournalState:
        """The journal's state, once the file is known to be this run's journal."""
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigurationError(f"the journal {self.path} is not a regular file")
        try:
            _lock(fd)
        except OSError:
            raise ConfigurationError(f"the journal {self.path} is in use by another run") from None
        try:
            data = _read_all(fd)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the journal {self.path}: {exc.strerror}"
            ) from None
        complete = data.rfind(b"\n") + 1
        state = JournalState.read(data[:complete].splitlines())
        if state.kind == "foreign" or (complete == 0 and data and not data.startswith(b'{"')):
            raise ConfigurationError(
                f"{self.path} is not a journal (its first line is no journal record): "
                "give --journal a new path, or the path of a journal"
            )
        self._check_target(state)
        if complete < len(data):
            os.ftruncate(fd, complete)  # a torn last line: its write never finished
        return state

    def _check_target(self, state: JournalState) -> None:
        if self.target is None or self.any_target or state.kind == "empty":
            return
        if state.target == self.target:
            return
        made_for = "no target (an older version wrote it)"
        if state.target is not None:
            made_for = state.target.describe()
        raise ConfigurationError(
            f"the journal {self.path} was made for {made_for}, not for "
            f"{self.target.describe()}: give another --journal path, or pass "
            "--journal-any-target (any_target=True in code) to use it anyway"
        )

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
            record = final_record(outcome)
            self._append(record)
            self._state.final[outcome.message_id] = record["outcome"]
        return outcome

    def _append(self, record: dict[str, Any]) -> None:
        line = encode_record(record)
        with self._lock:
            if self._fd is None:
                raise ConfigurationError(f"the journal {self.path} is closed")
            header = self._state.kind == "empty"
            if header:
                # The header goes with the first record, in the same write: a journal
                # opened and closed with nothing recorded stays empty.
                line = encode_record(header_record(self.target)) + line
            self._write(self._fd, line)
            if header:
                self._state.kind, self._state.target = "journal", self.target

    def _write(self, fd: int, line: bytes) -> None:
        written = os.write(fd, line)  # one write: a line is whole or absent
        if written != len(line):
            raise OSError(f"short write to the journal ({written} of {len(line)} bytes)")
        if self.fsync:
            os.fsync(fd)


def _read_all(fd: int) -> bytes:
    with open(fd, "rb", closefd=False) as stream:
        return stream.read()


def _lock(fd: int) -> None:
    """Take the journal's advisory lock, or raise ``OSError`` when another run has it.

    POSIX only: imported here, so that importing the SDK works on every platform.
    """
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
