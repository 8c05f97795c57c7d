"""What the fleet rescue writes in Redis for each id, and reads back: its queue entry
and its final outcome (JSON in the campaign's ledger), sans-I/O.

A queue entry is the id's cut-off in milliseconds since the epoch (the sorted set's
score) and its "sends" value, ``"<cut-off> <send time, ISO 8601>"`` (an id without a
send time: :data:`NO_SEND` and nothing after the space). A final outcome is the JSON
of a :class:`~mailpartner_async.CancelOutcome`: ``{"ok", "stopped", "code",
"message", "attempts"}`` for a result, ``{"ok", "stopped", "code", "message",
"error"}`` for an error (its class name), and ``{"late", "send_at"}`` for an id the
lease script found already inside its last 5 minutes (made final there, with no
request).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from . import errors
from .errors import MailPartnerError
from .models import (
    BatchItem,
    CancelCode,
    CancelOutcome,
    CancelResult,
    ScheduledMessage,
    outcome_category,
)
from .protocol import normalize_message_id
from .rescue import cutoff, too_late_error

__all__ = [
    "NO_SEND",
    "QueueEntry",
    "decode_outcome",
    "encode_outcome",
    "from_ms",
    "queue_entry",
    "scheduled",
    "settled_on_release",
    "to_ms",
]

NO_SEND: Final = -(2**52)
"""The score of an id without a send time: before every cut-off, never too late."""

# Error classes a ledger entry may name; any other reads back as MailPartnerError.
_ERRORS: Final = {
    name: cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type) and issubclass(cls, MailPartnerError)
}


@dataclasses.dataclass(frozen=True, slots=True)
class QueueEntry:
    """An id as the queue holds it: its text, its cut-off score and its sends value."""

    message_id: str
    score: int
    sends: str


def to_ms(moment: datetime) -> int:
    """``moment`` in whole milliseconds since the epoch (rounded down)."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def from_ms(ms: float) -> datetime:
    """Milliseconds since the epoch as an aware UTC ``datetime``; ``ValueError`` when
    no ``datetime`` holds it (out of range, infinite or NaN)."""
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    except OverflowError:
        raise ValueError(f"milliseconds out of a datetime's range: {ms!r}") from None


def queue_entry(item: object) -> QueueEntry:
    """The queue entry of a submitted item (a ``ScheduledMessage`` or a plain id).

    A bad id is an :class:`~mailpartner_async.InvalidRequestError`, as the client
    raises it; anything else that is not an id is one too.
    """
    if isinstance(item, ScheduledMessage):
        text = normalize_message_id(item.message_id)
        score = to_ms(cutoff(item.send_at))
        return QueueEntry(text, score, f"{score} {item.send_at.isoformat()}")
    text = normalize_message_id(item)
    return QueueEntry(text, NO_SEND, f"{NO_SEND} ")


def scheduled(message_id: str, sends: str) -> BatchItem:
    """The batch item of a leased id, from its sends value ("cut-off send-time").

    Without a send time, or with one that cannot be read (not written by the rescue,
    or naive), the plain id: it is cancelled without a cut-off check, and the
    provider's answer tells whether it was in time. Corrupt data costs at most a
    request, and never strands the id.
    """
    _, _, send_at = sends.partition(" ")
    try:
        return ScheduledMessage(message_id, datetime.fromisoformat(send_at))
    except ValueError:  # no send time, not ISO 8601, or naive
        return message_id


def encode_outcome(outcome: CancelOutcome) -> tuple[str, str]:
    """The ledger's JSON of ``outcome``, and its :class:`BatchProgress` category."""
    fields: dict[str, Any] = {"ok": outcome.ok, "stopped": outcome.stopped}
    if outcome.result is not None:
        result = outcome.result
        fields.update(code=int(result.code), message=result.message, attempts=result.attempts)
    else:
        error = outcome.error
        assert error is not None
        code = getattr(error, "code", None)
        fields.update(
            code=int(code) if isinstance(code, int) else None,
            message=error.message,
            error=type(error).__name__,
        )
        if isinstance(error, errors.CancellationTooLateError) and error.http_status is None:
            # Too late before any request (the batch's own check): an outcome that the
            # answer of a request made under a lease taken back replaces (RECORD).
            fields["asked"] = False
    return json.dumps(fields, separators=(",", ":"), sort_keys=True), outcome_category(outcome)


def decode_outcome(message_id: str, text: str) -> CancelOutcome:
    """The outcome of a ledger entry; ``ValueError`` (or ``KeyError``, ``TypeError``)
    when the entry is not one the rescue writes."""
    fields = json.loads(text)
    if not isinstance(fields, dict):
        raise ValueError("a ledger entry is a JSON object")
    if "late" in fields:
        now = from_ms(float(fields["late"]))
        send_at = str(fields["send_at"])
        message = ScheduledMessage(message_id, datetime.fromisoformat(send_at))
        return CancelOutcome(message_id, error=too_late_error(message, now))
    if fields["ok"]:
        result = CancelResult(
            success=True,
            code=CancelCode(fields["code"]),
            message=str(fields["message"]),
            message_id=message_id,
            attempts=int(fields["attempts"]),
        )
        return CancelOutcome(message_id, result=result)
    return CancelOutcome(message_id, error=_error(message_id, fields))


def _error(message_id: str, fields: dict[str, Any]) -> MailPartnerError:
    cls = _ERRORS.get(str(fields["error"]), MailPartnerError)
    message = str(fields["message"])
    code = fields.get("code")
    if issubclass(cls, errors.APIError):
        return cls(message, code=_code(code), message_id=message_id)
    return cls(message, message_id=message_id)


def _code(code: object) -> int:
    if not isinstance(code, int):
        raise TypeError(f"an API error's code is an int, got {code!r}")
    try:
        return CancelCode(code)
    except ValueError:
        return code


def settled_on_release(outcome: CancelOutcome, times_leased: int) -> CancelOutcome:
    """``outcome`` as the rescue records it: a code 5 answered to an id leased more than
    once counts as cancelled (an earlier lease's request may have done it, its answer
    lost with its worker), as the client counts a code 5 after a lost answer."""
    error = outcome.error
    if times_leased < 2 or not isinstance(error, errors.AlreadyCancelledError):
        return outcome
    result = CancelResult(
        success=True,
        code=CancelCode.ALREADY_CANCELLED,
        message=error.message,
        message_id=outcome.message_id,
    )
    return CancelOutcome(outcome.message_id, result=result)
