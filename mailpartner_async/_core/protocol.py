"""The sans-I/O core: build the request, read the answer, decide what it means.

Pure functions shared by the async and the sync client; nothing here does I/O, sleeps,
or imports httpx. Every function is tested table-driven with exact inputs and outputs.
"""

from __future__ import annotations

import codecs
import dataclasses
import email.utils
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from .errors import (
    AlreadyCancelledError,
    AlreadySentError,
    APIConnectionError,
    APIError,
    AuthenticationError,
    CancellationTooLateError,
    InvalidRequestError,
    MailPartnerError,
    MessageNotFoundError,
    RateLimitError,
    UnexpectedResponseError,
)
from .models import PROVIDER_MESSAGES, CancelCode, CancelResult
from .secrets import Secret, SecretText, excerpt, redact, redact_json
from .settings import MAX_BODY_BYTES, ResponseFormat

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

__all__ = [
    "AMBIGUOUS_FRAMING",
    "ENDPOINT",
    "Answer",
    "CancelRequest",
    "RawResponse",
    "Verdict",
    "build_request",
    "cancelled_by_this_call",
    "error_for_code",
    "interpret_response",
    "interpret_transport_error",
    "normalize_message_id",
    "parse_retry_after",
    "read_answer",
]

ENDPOINT: Final = "/message-cancel"
AMBIGUOUS_FRAMING: Final = "both Transfer-Encoding and Content-Length: ambiguous end"
"""Why an answer framed both ways is refused (RFC 9112, section 6.3): where it ends
depends on who reads it. httpx's parser reads it by ``Transfer-Encoding`` and the
protocol refuses it from the headers; aiohttp's refuses the head itself, and its
transport says so with ``refused``. Either way: an ``UnexpectedResponseError``."""
# The first ``charset`` parameter; its value as sent, quotes and spaces included.
_CHARSET_PARAMETER: Final = re.compile(r";\s*charset\s*=([^;]*)", re.IGNORECASE)

_CODE_ERRORS: Final[Mapping[int, type[APIError]]] = {
    CancelCode.API_KEY_REQUIRED: AuthenticationError,
    CancelCode.MESSAGE_ID_REQUIRED: InvalidRequestError,
    CancelCode.MESSAGE_NOT_FOUND: MessageNotFoundError,
    CancelCode.ALREADY_CANCELLED: AlreadyCancelledError,
    CancelCode.TOO_LATE: CancellationTooLateError,
    CancelCode.ALREADY_SENT: AlreadySentError,
    CancelCode.INVALID_API_KEY: AuthenticationError,
    CancelCode.RATE_LIMITED: RateLimitError,
}

# --- the request -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class CancelRequest:
    """A GET to send. The key stays in its :class:`Secret` until :attr:`params` is
    read, at the moment of sending: no frame of the SDK holds it as a plain string,
    so a traceback rendered with local variables cannot show it."""

    url: str
    message_id: str
    api_key: Secret
    response_format: ResponseFormat
    method: str = "GET"

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """The query, key included, for the HTTP layer to encode (never concatenated)."""
        params = (("apiKey", self.api_key.reveal()), ("messageId", self.message_id))
        if self.response_format == "xml":
            return (*params, ("_format", "xml"))
        return params

    def query(self) -> str:
        """:attr:`params` as a query string, every value percent-encoded: a ``+`` is
        sent as ``%2B`` (a server would read a bare one as a space), a space as
        ``%20``, and ``&``, ``=`` and ``/`` encoded too."""
        return "&".join(f"{name}={quote(value, safe='')}" for name, value in self.params)


def normalize_message_id(message_id: object) -> str:
    """``str(message_id)`` for a ``str`` or ``int``; a blank or other value is code 3.

    >>> normalize_message_id(300)
    '300'
    """
    if isinstance(message_id, bool) or not isinstance(message_id, str | int):
        raise InvalidRequestError(
            f"message id must be a str or an int, got {type(message_id).__name__}",
            code=CancelCode.MESSAGE_ID_REQUIRED,
        )
    try:
        text = str(message_id).strip()
    except ValueError:  # an int too long to print (sys.get_int_max_str_digits)
        raise InvalidRequestError(
            "message id is an int too large to be a message id",
            code=CancelCode.MESSAGE_ID_REQUIRED,
        ) from None
    if not text:
        raise InvalidRequestError(
            "message id is required and must not be blank",
            code=CancelCode.MESSAGE_ID_REQUIRED,
            message_id=str(message_id),
        )
    return text


def build_request(
    base_url: str,
    api_key: Secret | None,
    message_id: object,
    response_format: ResponseFormat,
) -> CancelRequest:
    """The request that cancels ``message_id``; fails before any I/O on bad input.

    Raises :class:`AuthenticationError` (code 1) without a key and
    :class:`InvalidRequestError` (code 3) for a blank or mistyped message id.
    """
    normalized = normalize_message_id(message_id)
    if api_key is None or not api_key.reveal():
        raise AuthenticationError(
            "an API key is required: pass api_key= or set $MAILPARTNER_API_KEY",
            code=CancelCode.API_KEY_REQUIRED,
            message_id=normalized,
        )
    return CancelRequest(base_url + ENDPOINT, normalized, api_key, response_format)


# --- the answer ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RawResponse:
    """An HTTP answer as the protocol module reads it, built by the transport.

    ``headers`` names are lowercase: whoever builds a ``RawResponse`` lowercases
    them (httpx's headers already are), so the protocol looks names up as given.
    ``body`` holds at most one byte more than :data:`MAX_BODY_BYTES`; ``truncated``
    says the connection broke while the body was being read; ``oversized`` that the
    declared length was over the cap, so the body was not read at all (or that it
    inflated past the cap); ``undecodable`` says why a ``Content-Encoding`` could not
    be undone; ``refused`` why the HTTP library refused the head itself (the status
    then unknown: 0).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool = False
    oversized: bool = False
    undecodable: str = ""
    refused: str = ""


class _NotAnAPIResponse(Exception):
    """The body could not be read as an API response; the text says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """What a body says: the API's ``fields`` and control ``code``, or why it has none.

    ``problem`` is empty when ``code`` is set, else a short reason for the logs.
    """

    fields: Mapping[str, Any]
    code: int | None
    problem: str = ""


def read_answer(raw: RawResponse) -> Answer:
    """The fields and control code of ``raw``'s body, chosen by what the body is.

    The Content-Type decides when it names JSON or XML; otherwise the first
    non-blank character does. XML may be the provider's positional form
    (``<result><entry>…</entry>…</result>``, in the order success, code, message,
    CDATA and whitespace allowed) or named ``<success>``/``<code>``/``<message>``
    children. A DTD or entity declaration is refused. A code is an int, a whole
    float or a string of digits; anything else leaves ``code`` ``None``.
    """
    try:
        if raw.refused:
            raise _NotAnAPIResponse(raw.refused)
        if "transfer-encoding" in raw.headers and "content-length" in raw.headers:
            raise _NotAnAPIResponse(AMBIGUOUS_FRAMING)
        if raw.undecodable:
            raise _NotAnAPIResponse(raw.undecodable)
        if raw.oversized:
            raise _NotAnAPIResponse(f"body larger than {MAX_BODY_BYTES} bytes")
        fields = _parse_body(raw.body, raw.headers.get("content-type", ""))
    except _NotAnAPIResponse as exc:
        return Answer({}, None, str(exc))
    code = _as_code(fields.get("code"))
    return Answer(fields, code, "no control code" if code is None else "")


def _parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise _NotAnAPIResponse(f"body larger than {MAX_BODY_BYTES} bytes")
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        raise _NotAnAPIResponse("empty body")
    kind = _body_kind(stripped, content_type)
    if kind == "json":
        return _parse_json(stripped, _charset(content_type))
    if kind == "xml":
        return _parse_xml(stripped)
    raise _NotAnAPIResponse(f"body is neither JSON nor XML (Content-Type {content_type!r})")


def _body_kind(body: bytes, content_type: str) -> str | None:
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return "xml"
    if body[:1] in (b"{", b"["):
        return "json"
    if body[:1] == b"<":
        return "xml"
    return None


def _charset(content_type: str) -> str | None:
    """The codec the ``charset`` parameter of a Content-Type names, if any.

    The codec registry ignores case, spaces and quotes around a name; a name it does
    not know counts as none.
    """
    match = _CHARSET_PARAMETER.search(content_type)
    if match is None:
        return None
    try:
        return codecs.lookup(match.group(1)).name
    except (LookupError, ValueError):  # ValueError: a NUL or a lone surrogate in the name
        return None


def _parse_json(body: bytes, charset: str | None = None) -> dict[str, Any]:
    try:
        text = body.decode(charset) if charset else body
        data = json.loads(text)
    except RecursionError:
        raise _NotAnAPIResponse("invalid JSON: nested too deeply") from None
    except LookupError:  # a codec, but not of text: hex, rot13...
        raise _NotAnAPIResponse(f"charset {charset!r} is not a text encoding") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _NotAnAPIResponse(f"invalid JSON: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise _NotAnAPIResponse("JSON body is not an object")
    return data


_POSITIONAL_FIELDS: Final = ("success", "code", "message")


def _parse_xml(body: bytes) -> dict[str, Any]:
    # Imported here: JSON users never pay for the XML parser.
    import xml.etree.ElementTree as ET

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring as defused_fromstring

    try:
        # Entities are refused by default, and they are declared in a DTD anyway.
        root = defused_fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise _NotAnAPIResponse("XML declares a DTD or entities") from None
    except (ET.ParseError, LookupError, ValueError) as exc:
        raise _NotAnAPIResponse(f"invalid XML: {exc}") from None
    children = list(root)
    named = {child.tag: _xml_text(child) for child in children if child.tag != "entry"}
    if "code" in named:
        data: dict[str, Any] = dict(named)
        errors = root.find("errors")
        if errors is not None:
            data["errors"] = [{item.tag: _xml_text(item) for item in entry} for entry in errors]
        return data
    entries = [child for child in children if child.tag == "entry"]
    if len(entries) >= 2:
        return {
            name: _xml_text(entry) for name, entry in zip(_POSITIONAL_FIELDS, entries, strict=False)
        }
    raise _NotAnAPIResponse(f"XML <{root.tag}> has no code")


def _xml_text(element: ET.Element) -> str:
    return "".join(element.itertext()).strip()


def _as_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        return int(value.strip())
    return None


def _as_code_member(code: int) -> int:
    try:
        return CancelCode(code)
    except ValueError:
        return code


# Where the provider puts what went wrong, in the order read: each may hold a string,
# an object with a ``message``, or a list of either (its validation answer:
# ``"error": [{"elementId": "...", "message": "..."}]``).
_MESSAGE_KEYS: Final = ("message", "error", "errors")


def _message_of(data: Mapping[str, Any], code: int) -> str:
    """The first of ``message``, ``error`` and ``errors`` that says something, its
    texts joined by ``"; "``; else the provider's documented text for ``code``."""
    for key in _MESSAGE_KEYS:
        texts = [text for entry in _entries(data.get(key)) if (text := _text_of(entry))]
        if texts:
            return "; ".join(texts)
    return PROVIDER_MESSAGES.get(code, "")


def _entries(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


def _text_of(entry: object) -> str:
    if isinstance(entry, Mapping):
        entry = entry.get("message")
    return entry.strip() if isinstance(entry, str) else ""


def _errors_of(data: Mapping[str, Any], secret: SecretText = None) -> list[Mapping[str, Any]]:
    """The error objects: those of ``errors`` (a list, or one object), else those of an
    ``error`` list (one object under ``error`` is the answer's message, not a list
    item), every value in them redacted at any depth."""
    errors = data.get("errors")
    objects = _entries(errors) if errors is not None else []
    if not any(isinstance(entry, Mapping) for entry in objects):
        error = data.get("error")
        objects = error if isinstance(error, list) else []
    return [redact_json(entry, secret) for entry in objects if isinstance(entry, Mapping)]


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds asked by ``Retry-After-Ms`` or ``Retry-After`` (seconds or HTTP date).

    An HTTP date is counted from ``now`` (seconds since the epoch), given by the
    caller: nothing here reads a clock. Without ``now``, a date asks for no wait.

    >>> parse_retry_after({"retry-after": "2"})
    2.0
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if now is None:
            return None
        return max(when.timestamp() - now, 0.0)
    return value if math.isfinite(value) and value >= 0 else None


def error_for_code(
    code: int,
    message: str,
    *,
    message_id: str | None = None,
    http_status: int | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    retry_after: float | None = None,
) -> APIError:
    """The most specific :class:`APIError` for a control code other than 200."""
    cls = _CODE_ERRORS.get(code, APIError)
    member = _as_code_member(code)
    if cls is RateLimitError:
        return RateLimitError(
            message,
            code=member,
            message_id=message_id,
            http_status=http_status,
            errors=errors,
            retry_after=retry_after,
        )
    return cls(message, code=member, message_id=message_id, http_status=http_status, errors=errors)


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What one attempt's answer means.

    Exactly one of ``result`` and ``error`` is set. ``retry`` says whether another
    attempt may help, ``retry_after`` the delay the server asked for, ``reached``
    whether this attempt may have reached the server (so a later code 5 is ours),
    ``throttle`` whether the server asked every caller to slow down (a 429, or a
    ``Retry-After``), and ``reason`` a short, secret-free text for the logs. Build
    one with :meth:`success`, :meth:`final` or :meth:`retryable`.
    """

    result: CancelResult | None
    error: MailPartnerError | None
    retry: bool = False
    retry_after: float | None = None
    reached: bool = True
    reason: str = ""
    throttle: bool = False

    @classmethod
    def success(cls, result: CancelResult) -> Verdict:
        """The message is cancelled: the call returns ``result``."""
        return cls(result, None)

    @classmethod
    def final(cls, error: MailPartnerError, *, reason: str) -> Verdict:
        """The call fails with ``error``; another attempt would get the same answer."""
        return cls(None, error, reason=reason)

    @classmethod
    def retryable(
        cls,
        error: MailPartnerError,
        *,
        reason: str,
        retry_after: float | None = None,
        reached: bool = True,
        throttle: bool = False,
    ) -> Verdict:
        """Another attempt may help; ``error`` is raised once the retries run out."""
        return cls(
            None,
            error,
            retry=True,
            retry_after=retry_after,
            reached=reached,
            reason=reason,
            throttle=throttle,
        )


def interpret_response(
    raw: RawResponse,
    *,
    message_id: str,
    attempt: int = 1,
    earlier_attempt_reached: bool = False,
    secret: SecretText = None,
    now: float | None = None,
) -> Verdict:
    """The meaning of an HTTP answer to a cancel request.

    A body carrying a control code decides, whatever the HTTP status: 200 is a
    result, 429 is retried, any other code is final. Without a control code, a 429
    status is retried, a 5xx is retried, and anything else is an
    :class:`UnexpectedResponseError`. Code 5 after an earlier attempt that may have
    reached the server is a result: that attempt cancelled the message. A body cut
    short by a broken connection (``raw.truncated``) is retried, as the request was
    sent. ``secret``, the key the request carried, is masked in every text taken from
    the answer, wherever the server echoes it. ``now`` (seconds since the epoch) is
    what a ``Retry-After`` date is counted from.
    """
    retry_after = parse_retry_after(raw.headers, now)
    if raw.truncated:
        return _truncated(raw, message_id=message_id, retry_after=retry_after, secret=secret)
    answer = read_answer(raw)
    if answer.code is None:
        return _without_code(
            raw, answer.problem, message_id=message_id, retry_after=retry_after, secret=secret
        )
    message = redact(_message_of(answer.fields, answer.code), secret)
    if cancelled_by_this_call(answer.code, earlier_attempt_reached=earlier_attempt_reached):
        result = CancelResult(
            success=True,
            code=CancelCode(answer.code),
            message=message,
            message_id=message_id,
            attempts=attempt,
        )
        return Verdict.success(result)
    error = error_for_code(
        answer.code,
        message,
        message_id=message_id,
        http_status=raw.status,
        errors=_errors_of(answer.fields, secret),
        retry_after=retry_after,
    )
    return _for_error_code(error)


def cancelled_by_this_call(code: int, *, earlier_attempt_reached: bool) -> bool:
    """Whether ``code`` means the call cancelled the message.

    Code 200 does. So does code 5 (already cancelled) once an earlier attempt of
    the same call may have reached the server: its answer was lost, the cancel was
    ours.
    """
    if code == CancelCode.CANCELLED:
        return True
    return code == CancelCode.ALREADY_CANCELLED and earlier_attempt_reached


def _for_error_code(error: APIError) -> Verdict:
    if isinstance(error, RateLimitError):
        # The provider refused before doing anything: a later code 5 is not ours.
        return Verdict.retryable(
            error,
            reason="code 429",
            retry_after=error.retry_after,
            reached=False,
            throttle=True,
        )
    return Verdict.final(error, reason=f"code {int(error.code)}")


def _truncated(
    raw: RawResponse, *, message_id: str, retry_after: float | None, secret: SecretText
) -> Verdict:
    error = UnexpectedResponseError(
        "the connection closed before the whole body arrived",
        message_id=message_id,
        http_status=raw.status,
        body_excerpt=excerpt(raw.body, secret),
    )
    return Verdict.retryable(
        error,
        reason=f"HTTP {raw.status} body truncated",
        retry_after=retry_after,
        throttle=retry_after is not None,
    )


def _without_code(
    raw: RawResponse,
    problem: str,
    *,
    message_id: str,
    retry_after: float | None,
    secret: SecretText,
) -> Verdict:
    """A 429 status is retried and throttles, a 5xx is retried, anything else is final."""
    # The problem may quote a header the server sent (its Content-Type, its
    # Content-Encoding): a server may echo the key there too.
    problem = redact(problem, secret)
    if raw.status == 429:
        error: MailPartnerError = error_for_code(
            CancelCode.RATE_LIMITED,
            PROVIDER_MESSAGES[CancelCode.RATE_LIMITED],
            message_id=message_id,
            http_status=raw.status,
            retry_after=retry_after,
        )
        return Verdict.retryable(
            error, reason="HTTP 429", retry_after=retry_after, reached=False, throttle=True
        )
    error = UnexpectedResponseError(
        f"not a valid API response: {problem}",
        message_id=message_id,
        http_status=raw.status,
        body_excerpt=excerpt(raw.body, secret),
    )
    if raw.status >= 500:
        return Verdict.retryable(
            error,
            reason=f"HTTP {raw.status} without a control code",
            retry_after=retry_after,
            throttle=retry_after is not None,
        )
    return Verdict.final(error, reason=problem)


def interpret_transport_error(error: APIConnectionError) -> Verdict:
    """A failed attempt (no answer) is worth another attempt, unless the failure is
    not transient (TLS refused the server: the next attempt would be refused too)."""
    if not error.transient:
        return Verdict.final(error, reason=f"{type(error).__name__}: {error.message}")
    return Verdict.retryable(
        error,
        reason=f"{type(error).__name__}: {error.message}",
        reached=error.request_sent,
    )
