"""The journal's record format and finality rules, with no file and no clock.

A journal is one JSON object a line. Its first line says what it was made for:
``{"event": "journal", "version": 1, "target": {"base_url": ..., "key": ...,
"sandbox": ...}}``, the key given only as a fingerprint (:func:`key_fingerprint`).
Then ``{"event": "start", "id": ...}`` before a request for an id may reach the
server, and ``{"event": "final", "id": ..., "outcome": ..., "code": ...}`` once the
server's answer cannot change. An outcome decided without an answer (a message
skipped as too late, a blank id) is never final: a rerun reconsiders it.
:class:`JournalState` is what a journal's lines say, read back; the file around it
is ``mailpartner_async._journal``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from typing import Any, Final, Literal

from .errors import AlreadyCancelledError, APIError
from .models import BatchProgress, CancelCode, CancelOutcome, CancelResult, outcome_category
from .protocol import cancelled_by_this_call

__all__ = [
    "JournalState",
    "JournalTarget",
    "decided_locally",
    "encode_record",
    "final_record",
    "header_record",
    "is_final",
    "key_fingerprint",
    "parse_record",
]

JOURNAL_VERSION: Final = 1
# The fingerprint's fixed label: the HMAC key. A fingerprint tells two keys apart,
# and cannot be turned back into the key.
_FINGERPRINT_LABEL: Final = b"mailpartner-async journal key fingerprint v1"
_FINGERPRINT_HEX_DIGITS: Final = 16

# Codes after which asking again cannot change the answer.
_FINAL_CODES: Final = frozenset(
    {
        CancelCode.MESSAGE_ID_REQUIRED,
        CancelCode.MESSAGE_NOT_FOUND,
        CancelCode.ALREADY_CANCELLED,
        CancelCode.TOO_LATE,
        CancelCode.ALREADY_SENT,
    }
)
_CATEGORIES: Final = frozenset(
    field.name for field in dataclasses.fields(BatchProgress) if field.name != "done"
)


def key_fingerprint(api_key: str) -> str:
    """A short fingerprint of ``api_key``: HMAC-SHA-256 under a fixed label, truncated.

    Two keys give two fingerprints; the fingerprint gives no way back to the key.
    """
    digest = hmac.new(_FINGERPRINT_LABEL, api_key.encode(), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest[:_FINGERPRINT_HEX_DIGITS]}"


@dataclasses.dataclass(frozen=True, slots=True)
class JournalTarget:
    """What a journal was made for: where its requests went, with which key, for real
    or in the sandbox. ``key`` is a :func:`key_fingerprint`, never the key."""

    base_url: str
    key: str | None
    sandbox: bool = False

    @classmethod
    def of(cls, base_url: str, api_key: str | None, *, sandbox: bool = False) -> JournalTarget:
        """The target of a client at ``base_url`` using ``api_key`` (kept as a fingerprint)."""
        key = None if api_key is None else key_fingerprint(api_key)
        return cls(base_url.rstrip("/"), key, sandbox)

    def describe(self) -> str:
        where = "the sandbox" if self.sandbox else self.base_url
        return f"{where} with the key {self.key}" if self.key else where

    def as_record(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "key": self.key, "sandbox": self.sandbox}

    @classmethod
    def from_record(cls, record: object) -> JournalTarget | None:
        """The target a header names; None when it names none (or not in this form)."""
        if not isinstance(record, dict):
            return None
        base_url, key, sandbox = record.get("base_url"), record.get("key"), record.get("sandbox")
        if not isinstance(base_url, str) or not isinstance(sandbox, bool):
            return None
        if key is not None and not isinstance(key, str):
            return None
        return cls(base_url, key, sandbox)


def header_record(target: JournalTarget | None) -> dict[str, Any]:
    """The first line of a new journal."""
    record: dict[str, Any] = {"event": "journal", "version": JOURNAL_VERSION}
    if target is not None:
        record["target"] = target.as_record()
    return record


def decided_locally(outcome: CancelOutcome) -> bool:
    """True for an outcome the batch gave without a request (a control-code error no
    answer carried): a message skipped as too late, a blank id."""
    error = outcome.error
    return isinstance(error, APIError) and error.http_status is None


def is_final(outcome: CancelOutcome) -> bool:
    """True when a rerun would get the same answer: cancelled, or a final control code
    the server answered.

    Connection errors, rate limits, unexpected answers and key errors are not
    final, nor is what the batch decided without asking the server (a message
    skipped as too late, read with the wrong time zone, say): a rerun tries those
    ids again.
    """
    error = outcome.error
    if error is None:
        return True
    return (
        isinstance(error, APIError) and error.code in _FINAL_CODES and not decided_locally(outcome)
    )


def final_record(outcome: CancelOutcome) -> dict[str, Any]:
    """The ``final`` line of an outcome."""
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


def encode_record(record: dict[str, Any]) -> bytes:
    """One record as the line written to the file, newline included.

    Raises ``UnicodeEncodeError`` for an id that is not text UTF-8 can hold (a lone
    surrogate, as ``os.fsdecode`` makes of a byte that is not UTF-8): the caller
    decides what that means for the id.
    """
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()


def parse_record(line: bytes) -> dict[str, Any] | None:
    """A line's record, or ``None`` for a line that is not one (it is skipped).

    A ``final`` record must name an outcome this version counts; a ``journal``
    record (the header) must carry its version.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    event = record.get("event")
    if event == "journal":
        return record if isinstance(record.get("version"), int) else None
    if not isinstance(record.get("id"), str):
        return None
    outcome = record.get("outcome")
    if event == "start" or (
        event == "final" and isinstance(outcome, str) and outcome in _CATEGORIES
    ):
        return record
    return None


Kind = Literal["empty", "journal", "unbound", "foreign"]


@dataclasses.dataclass
class JournalState:
    """What a journal's lines say.

    ``final`` maps each id final to its outcome's count name; ``previous`` counts
    them; ``ignored`` counts the lines that are not records of this version.
    ``kind`` is ``"journal"`` when the first line is a header (``target`` is what it
    names), ``"unbound"`` for records with no header (an older version's), ``"empty"``
    and ``"foreign"`` (the first line is no record: not a journal).
    """

    final: dict[str, str] = dataclasses.field(default_factory=dict)
    started_before: set[str] = dataclasses.field(default_factory=set)
    previous: BatchProgress = dataclasses.field(default_factory=BatchProgress)
    ignored: int = 0
    kind: Kind = "empty"
    target: JournalTarget | None = None

    @classmethod
    def read(cls, lines: list[bytes]) -> JournalState:
        """The state of a journal made of ``lines`` (complete lines, newline cut)."""
        state = cls()
        counts: dict[str, int] = {}
        for number, line in enumerate(lines):
            record = parse_record(line)
            if number == 0:
                state.kind = _kind(record)
                if state.kind == "foreign":
                    return state
                if record is not None and state.kind == "journal":
                    state.target = JournalTarget.from_record(record.get("target"))
                    continue
            if record is None or record["event"] == "journal":
                state.ignored += 1
            elif record["event"] == "start":
                state.started_before.add(record["id"])
            elif record["id"] not in state.final:
                state.final[record["id"]] = record["outcome"]
                counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
        state.previous = BatchProgress(done=sum(counts.values()), **counts)
        return state

    def settled(self, outcome: CancelOutcome) -> CancelOutcome:
        """The outcome as this run reports it.

        A code 5 for an id an earlier run had started is that run's cancel, by the
        client's own retry rule: it is reported as cancelled, with
        ``code=ALREADY_CANCELLED``.
        """
        error = outcome.error
        if isinstance(error, AlreadyCancelledError) and cancelled_by_this_call(
            error.code, earlier_attempt_reached=outcome.message_id in self.started_before
        ):
            result = CancelResult(
                success=True,
                code=CancelCode.ALREADY_CANCELLED,
                message=error.message,
                message_id=outcome.message_id,
            )
            return CancelOutcome(outcome.message_id, result=result)
        return outcome


def _kind(first: dict[str, Any] | None) -> Kind:
    if first is None:
        return "foreign"
    return "journal" if first["event"] == "journal" else "unbound"
