"""Every error the SDK raises, most specific first.

The tree::

    MailPartnerError
    ├── ConfigurationError              a bad setting (base URL, timeout, limits), raised at once
    ├── APIError                        the API answered a control code other than 200
    │   ├── AuthenticationError         codes 1 (key missing) and 10 (key incorrect)
    │   ├── InvalidRequestError         code 3 (message id missing or blank)
    │   ├── MessageNotFoundError        code 4
    │   ├── AlreadyCancelledError       code 5
    │   ├── CancellationTooLateError    code 6 (less than 5 minutes before sending)
    │   ├── AlreadySentError            code 7
    │   └── RateLimitError              code 429, in the body or as the HTTP status
    ├── APIConnectionError              no answer: connect, read, write or protocol error
    │   └── APITimeoutError             the attempt timed out
    ├── UnexpectedResponseError         an answer that is not an API response
    └── BatchError                      a batch ended before its ids ran out; carries the outcomes
        └── IdsSourceError              the batch's ids iterable raised

Messages never contain the API key: errors are built from the control code, the
provider's message, the message id and the HTTP status, never from a URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import BatchProgress, CancelOutcome
    from .response import ResponseInfo

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AlreadyCancelledError",
    "AlreadySentError",
    "AuthenticationError",
    "BatchError",
    "CancellationTooLateError",
    "ConfigurationError",
    "IdsSourceError",
    "InvalidRequestError",
    "MailPartnerError",
    "MessageNotFoundError",
    "RateLimitError",
    "UnexpectedResponseError",
]


class MailPartnerError(Exception):
    """Base of every error the SDK raises.

    ``response`` is the HTTP status and (redacted) headers of the answer that decided
    the call, with the provider's ``request_id`` if it sent one; ``None`` when no
    answer came (a connection error, a check before any request).
    """

    message: str
    message_id: str | None
    response: ResponseInfo | None = None

    def __init__(self, message: str, *, message_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.message_id = message_id

    def __str__(self) -> str:
        if self.message_id is None:
            return self.message
        return f"{self.message} (message id {self.message_id!r})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, message_id={self.message_id!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive pickling by default (multiprocessing,
        # Celery results); rebuild from the instance dict instead.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[MailPartnerError], state: dict[str, Any]) -> MailPartnerError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["message"])
    error.__dict__.update(state)
    return error


class ConfigurationError(MailPartnerError, ValueError):
    """A client setting is invalid: raised by the constructor, before any request."""


class APIError(MailPartnerError):
    """The API answered with a control code other than 200.

    ``code`` is the control code (a :class:`~mailpartner_async.CancelCode` member when
    the code is documented), ``message`` the provider's text as it came (possibly in
    French; a batch that made no retry because its cut-off would have passed adds
    "; not retried: ..."), ``errors`` the provider's ``errors`` list when it sent one, and
    ``http_status`` the HTTP status the answer came with (``None`` when the error was
    caught before any request).
    """

    code: int
    http_status: int | None
    errors: tuple[Mapping[str, Any], ...]

    def __init__(
        self,
        message: str,
        *,
        code: int,
        message_id: str | None = None,
        http_status: int | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(message, message_id=message_id)
        self.code = code
        self.http_status = http_status
        self.errors = tuple(errors)

    def __str__(self) -> str:
        return f"[code {int(self.code)}] {super().__str__()}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={int(self.code)}, message={self.message!r}, "
            f"message_id={self.message_id!r}, http_status={self.http_status!r})"
        )


class AuthenticationError(APIError):
    """The API key is missing (code 1) or incorrect (code 10)."""


class InvalidRequestError(APIError):
    """The message id is missing (code 3); a blank id is caught before any request."""


class MessageNotFoundError(APIError):
    """No message has this id (code 4)."""


class AlreadyCancelledError(APIError):
    """The message was already cancelled (code 5), by an earlier call.

    Not raised when this call's own earlier attempt may have done it (its answer was
    lost): the call then returns a ``CancelResult`` with
    ``code=CancelCode.ALREADY_CANCELLED``.
    """


class CancellationTooLateError(APIError):
    """The message goes out in less than 5 minutes and can no longer be cancelled (code 6)."""


class AlreadySentError(APIError):
    """The message has already been sent (code 7)."""


class RateLimitError(APIError):
    """The API answered code 429 (in the body or as the HTTP status) on every attempt.

    ``retry_after`` is the delay in seconds the last answer asked for, if it gave one.
    """

    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        code: int = 429,
        message_id: str | None = None,
        http_status: int | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, code=code, message_id=message_id, http_status=http_status, errors=errors
        )
        self.retry_after = retry_after


class APIConnectionError(MailPartnerError):
    """The request got no answer: connect, read, write or protocol error.

    ``request_sent`` tells whether the request may have reached the server (a read
    error or a connection closed before the answer) or surely did not (a connect
    error). ``transient`` is ``False`` for a failure another attempt cannot fix,
    which is not retried: TLS refused the server (a certificate that does not verify,
    or a server that does not speak TLS on the port).
    """

    request_sent: bool
    transient: bool

    def __init__(
        self,
        message: str,
        *,
        message_id: str | None = None,
        request_sent: bool = False,
        transient: bool = True,
    ) -> None:
        super().__init__(message, message_id=message_id)
        self.request_sent = request_sent
        self.transient = transient


class APITimeoutError(APIConnectionError):
    """The attempt timed out (connecting, writing, reading, or waiting for the pool)."""


class UnexpectedResponseError(MailPartnerError):
    """An answer that is not a valid API response.

    An HTML error page, an empty or truncated body, invalid JSON or XML, a body too
    large, an XML document declaring a DTD or entities, or a 5xx without a control
    code. ``http_status`` is the HTTP status and ``body_excerpt`` a short, printable
    start of the body.
    """

    http_status: int | None
    body_excerpt: str

    def __init__(
        self,
        message: str,
        *,
        message_id: str | None = None,
        http_status: int | None = None,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message, message_id=message_id)
        self.http_status = http_status
        self.body_excerpt = body_excerpt

    def __str__(self) -> str:
        text = f"{super().__str__()} [HTTP {self.http_status}]"
        if self.body_excerpt:
            text += f": {self.body_excerpt!r}"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, message_id={self.message_id!r}, "
            f"http_status={self.http_status!r})"
        )


class BatchError(MailPartnerError):
    """A batch ended before its ids ran out: its own machinery failed (the journal
    could not be written, the clock failed) or a worker crashed.

    The batch started no other id once it happened, and every outcome it had was
    given first: ``cancel_iter`` delivered them before raising, and ``cancel_many``
    puts them in ``outcomes``, in input order. ``progress`` counts the outcomes
    given; ``__cause__`` is what failed. Ids the batch never reached have no
    outcome: rerun them (with the journal, only those are sent again).
    """

    outcomes: list[CancelOutcome]

    def __init__(
        self,
        message: str,
        *,
        outcomes: Sequence[CancelOutcome] = (),
        progress: BatchProgress | None = None,
    ) -> None:
        super().__init__(message)
        self.outcomes = list(outcomes)
        self.progress = progress


class IdsSourceError(BatchError):
    """The ids iterable of a batch raised while the batch was taking ids from it.

    The batch started no other id, and every id it had taken got its outcome first:
    ``cancel_iter`` delivered them before raising, and ``cancel_many`` puts them in
    ``outcomes``, in input order. ``__cause__`` is the iterable's exception.
    """
