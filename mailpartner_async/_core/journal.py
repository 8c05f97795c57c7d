"""The journal's record format and finality rules, with no file and no clock.

A journal is one JSON object a line: ``{"event": "start", "id": ...}`` before a
request for an id may reach the server, ``{"event": "final", "id": ..., "outcome":
..., "code": ...}`` once its outcome cannot change. :class:`JournalState` is what a
journal's lines say, read back; the file around it is ``mailpartner_async._journal``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final

from .errors import AlreadyCancelledError, APIError
from .models import BatchProgress, CancelCode, CancelOutcome, CancelResult, outcome_category
from .protocol import cancelled_by_this_call

__all__ = ["JournalState", "encode_record", "final_record", "is_final", "parse_record"]

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
_KNOWN_COUNTS: Final = frozenset(field.name for field in dataclasses.fields(BatchProgress))


def is_final(outcome: CancelOutcome) -> bool:
    """True when a rerun would get the same answer: cancelled, or a final control code.

    Connection errors, rate limits, unexpected answers and key errors are not
    final: a rerun tries those ids again.
    """
    error = outcome.error
    return error is None or (isinstance(error, APIError) and error.code in _FINAL_CODES)


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
    """A line's record, or ``None`` for a line that is not one (it is skipped)."""
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


@dataclasses.dataclass
class JournalState:
    """What a journal's lines say: the ids final and started, and the earlier counts."""

    final: set[str] = dataclasses.field(default_factory=set)
    started_before: set[str] = dataclasses.field(default_factory=set)
    previous: BatchProgress = dataclasses.field(default_factory=BatchProgress)

    @classmethod
    def read(cls, lines: list[bytes]) -> JournalState:
        """The state of a journal made of ``lines`` (complete lines, newline cut)."""
        state = cls()
        counts: dict[str, int] = {}
        for line in lines:
            record = parse_record(line)
            if record is None:
                continue
            message_id = record["id"]
            if record["event"] == "start":
                state.started_before.add(message_id)
            elif message_id not in state.final:
                state.final.add(message_id)
                category = record.get("outcome", "failed")
                counts[category] = counts.get(category, 0) + 1
        counts = {name: count for name, count in counts.items() if name in _KNOWN_COUNTS}
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
