"""The values the SDK takes and returns: scheduled messages, control codes, results, outcomes."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, TypeAlias

from pydantic import BaseModel, ConfigDict, PrivateAttr

from .errors import (
    AlreadyCancelledError,
    AlreadySentError,
    CancellationTooLateError,
    MailPartnerError,
    MessageNotFoundError,
)
from .response import ResponseInfo

__all__ = [
    "PROVIDER_MESSAGES",
    "BatchItem",
    "BatchProgress",
    "CancelCode",
    "CancelOutcome",
    "CancelResult",
    "MessageId",
    "ProgressCallback",
    "ScheduledMessage",
    "attach_response",
    "outcome_category",
]

MessageId: TypeAlias = str | int


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduledMessage:
    """A message id with the time its email goes out.

    Given to ``cancel_many`` or ``cancel_iter`` instead of a plain id, it lets the
    batch start the message whose 5-minute cut-off comes first, first, and skip one
    already inside its last 5 minutes (the API would refuse it with code 6).
    ``send_at`` must be an aware ``datetime``.

    Example::

        ScheduledMessage("300", datetime(2020, 9, 25, 12, 0, tzinfo=ZoneInfo("Europe/Paris")))
    """

    message_id: MessageId
    send_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.send_at, datetime):
            raise TypeError(f"send_at must be a datetime, got {type(self.send_at).__name__}")
        if self.send_at.utcoffset() is None:
            raise ValueError("send_at must be an aware datetime (with a tzinfo)")


BatchItem: TypeAlias = MessageId | ScheduledMessage


class CancelCode(enum.IntEnum):
    """The control codes of the ``message-cancel`` endpoint.

    The provider documents 1, 3, 4, 5, 6, 7, 10 and 200; 429 is the rate-limit answer
    documented for the mail API.
    """

    API_KEY_REQUIRED = 1
    """No API key was sent (:class:`~mailpartner_async.AuthenticationError`)."""
    MESSAGE_ID_REQUIRED = 3
    """No message id was sent (:class:`~mailpartner_async.InvalidRequestError`)."""
    MESSAGE_NOT_FOUND = 4
    """No message has this id (:class:`~mailpartner_async.MessageNotFoundError`)."""
    ALREADY_CANCELLED = 5
    """Cancelled earlier (:class:`~mailpartner_async.AlreadyCancelledError`)."""
    TOO_LATE = 6
    """Less than 5 minutes before the send
    (:class:`~mailpartner_async.CancellationTooLateError`)."""
    ALREADY_SENT = 7
    """Already sent (:class:`~mailpartner_async.AlreadySentError`)."""
    INVALID_API_KEY = 10
    """The API key is wrong (:class:`~mailpartner_async.AuthenticationError`)."""
    CANCELLED = 200
    """Cancelled: the success code."""
    RATE_LIMITED = 429
    """Too many requests (:class:`~mailpartner_async.RateLimitError`, once retries are spent)."""


PROVIDER_MESSAGES: Final[Mapping[int, str]] = {
    CancelCode.API_KEY_REQUIRED: "API key is required",
    CancelCode.MESSAGE_ID_REQUIRED: "Message ID is required",
    CancelCode.MESSAGE_NOT_FOUND: "Message not found",
    CancelCode.ALREADY_CANCELLED: "The mail has already been canceled",
    CancelCode.TOO_LATE: "You cannot cancel the mail less than 5 minutes before its scheduled time",
    CancelCode.ALREADY_SENT: "You cannot cancel a mail that has already been sent",
    CancelCode.INVALID_API_KEY: "Incorrect API key",
    CancelCode.CANCELLED: "The email has been canceled.",
    CancelCode.RATE_LIMITED: "Too many requests",
}
"""The provider's message for each control code, worded as its ``message-cancel`` page.

The page words 200 in its "Response" example, and 429 as the mail API's rate-limit
answer. The SDK shows one of these when an answer carries a code but no message;
the testing fake answers with them. Keyed by :class:`CancelCode` (an ``int``).
"""


class CancelResult(BaseModel):
    """What a successful cancel returned.

    ``code`` is :attr:`CancelCode.CANCELLED`, or :attr:`CancelCode.ALREADY_CANCELLED`
    when an earlier attempt of the same call reached the server, its answer was lost,
    and the retry found the message already cancelled (the cancel was ours).
    ``attempts`` counts the HTTP attempts the call made, the first one included.
    Results are frozen: they compare by value and can be dict keys or set members.

    :attr:`response` is the HTTP status and headers of the answer that decided it:
    metadata, not a field (it is neither serialized nor compared).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    success: bool
    """True: the message is cancelled (a result is only made for a success)."""
    code: CancelCode
    """``CANCELLED``, or ``ALREADY_CANCELLED`` when a lost answer's retry found it done."""
    message: str
    """The provider's message, as it came (it may be in French)."""
    message_id: str
    """The id given to ``cancel``, as a ``str``."""
    attempts: int = 1
    """The HTTP attempts the call made, the first one included."""

    _response: ResponseInfo | None = PrivateAttr(default=None)

    @property
    def response(self) -> ResponseInfo | None:
        """The deciding answer's status and (redacted) headers; ``None`` if built by hand."""
        return self._response

    def __eq__(self, other: object) -> bool:
        # The documented fields only: the response metadata is not part of the value.
        if not isinstance(other, CancelResult):
            return NotImplemented
        return self.__dict__ == other.__dict__


@dataclasses.dataclass(frozen=True, slots=True)
class CancelOutcome:
    """One message id's outcome in a batch: a result or an error, never both.

    Example::

        for outcome in outcomes:
            if outcome.ok:
                print(outcome.message_id, outcome.result.code)
            else:
                print(outcome.message_id, type(outcome.error).__name__)
    """

    message_id: str
    result: CancelResult | None = None
    error: MailPartnerError | None = None

    def __post_init__(self) -> None:
        if (self.result is None) == (self.error is None):
            raise ValueError("a CancelOutcome holds exactly one of result or error")

    @property
    def ok(self) -> bool:
        """True when the call returned a result (``result`` is set)."""
        return self.result is not None

    @property
    def stopped(self) -> bool:
        """True when the email will not be sent, because of this call or an earlier one.

        That is code 200 (cancelled now) or code 5 (already cancelled), whether it came
        as a result or as an :class:`AlreadyCancelledError`; ``False`` for every other
        outcome (too late, already sent, not found, any error).
        """
        return self.result is not None or isinstance(self.error, AlreadyCancelledError)


@dataclasses.dataclass(frozen=True, slots=True)
class BatchProgress:
    """Counts after each outcome of a batch, for a progress bar or a summary.

    ``cancelled`` counts successes; ``already_cancelled``, ``too_late``,
    ``already_sent`` and ``not_found`` the matching control codes; ``failed``
    every other error (connection, rate limit, unexpected answers, bad ids).
    """

    done: int = 0
    cancelled: int = 0
    already_cancelled: int = 0
    too_late: int = 0
    already_sent: int = 0
    not_found: int = 0
    failed: int = 0

    @property
    def stopped(self) -> int:
        """How many of the emails counted will not be sent (cancelled now or already)."""
        return self.cancelled + self.already_cancelled

    @property
    def going_out(self) -> int:
        """How many of the emails counted were not stopped: they will or may still go out."""
        return self.done - self.stopped

    def add(self, outcome: CancelOutcome) -> BatchProgress:
        """These counts with one more outcome."""
        field = outcome_category(outcome)
        changes = {"done": self.done + 1, field: getattr(self, field) + 1}
        return dataclasses.replace(self, **changes)


ProgressCallback: TypeAlias = Callable[[BatchProgress], object]

_CATEGORIES: tuple[tuple[type[MailPartnerError], str], ...] = (
    (AlreadyCancelledError, "already_cancelled"),
    (CancellationTooLateError, "too_late"),
    (AlreadySentError, "already_sent"),
    (MessageNotFoundError, "not_found"),
)


def attach_response(result: CancelResult, response: ResponseInfo) -> None:
    """Give ``result`` the answer that decided it (its ``response``), as the client does."""
    result._response = response


def outcome_category(outcome: CancelOutcome) -> str:
    """The :class:`BatchProgress` count an outcome adds to (``"cancelled"``, ``"failed"``...)."""
    if outcome.error is None:
        return "cancelled"
    for cls, name in _CATEGORIES:
        if isinstance(outcome.error, cls):
            return name
    return "failed"
