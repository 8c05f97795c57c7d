"""FakeMailPartner: the stateful, in-memory fake of ``GET /v1/message-cancel``.

All behaviour lives in one sans-I/O method, :meth:`FakeMailPartner.handle` (method,
path and query in; status, headers and body out). The httpx transports and the ASGI
app are thin adapters around it, so every way of reaching the fake answers alike.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import itertools
import math
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from .._async.client import AsyncMailPartner
from .._async.fake_transport import FakeAsyncTransport
from .._core.errors import ConfigurationError
from .._core.secrets import redact_params
from .._core.settings import (
    RetryPolicy,
    check_count,
    check_seconds,
)
from .._sync.fake_transport import FakeTransport
from ._answers import FakeResponse, code_answer, plain_answer, unavailable_answer
from ._asgi import FakeASGIApp
from ._clock import check_aware

if TYPE_CHECKING:
    from .. import MailPartner

__all__ = [
    "CANCEL_CUTOFF",
    "ENDPOINT_PATH",
    "FAKE_BASE_URL",
    "FAST_RETRY_POLICY",
    "FakeMailPartner",
    "FaultKind",
    "MessageStatus",
    "RecordedRequest",
]

FaultKind = Literal["connect_error", "timeout", "http_503", "rate_limit"]
HTTPLibrary = Literal["httpx", "httpx2"]
"""What :meth:`FakeMailPartner.fail_next` can inject."""
MessageStatus = Literal["scheduled", "cancelled", "sent"]
"""What :meth:`FakeMailPartner.status` reports."""

FAKE_BASE_URL: Final = "https://fake.mailpartner.test/v1"
"""The base URL of the clients the fake wires (no request leaves the process)."""
ENDPOINT_PATH: Final = "/v1/message-cancel"
CANCEL_CUTOFF: Final = timedelta(minutes=5)
"""Cancelling needs at least this long before the send time (exactly 5:00 is enough)."""
RATE_WINDOW_SECONDS: Final = 60.0
# What the provider's sandbox does with an id it has never seen.
_UNKNOWN_LEAD: Final = timedelta(hours=1)
FAST_RETRY_POLICY: Final = RetryPolicy(initial_delay=0.001, max_delay=0.01, max_retry_after=0.05)
"""The fake clients' retry policy: the SDK's backoff in milliseconds; a ``Retry-After``
above 50 ms is not waited (backoff instead), so retry paths take no real time."""


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class RecordedRequest:
    """One call the fake received, as :attr:`FakeMailPartner.requests` lists it.

    ``params`` holds the decoded query parameters (the last value wins when a name
    repeats, as with the provider's PHP). It keeps ``apiKey`` as sent, so a test can
    check which key its code used (:attr:`api_key`), but ``repr`` and ``str`` mask
    it. ``status`` is the HTTP status answered (``None`` when no answer was given:
    an injected ``connect_error`` or ``timeout``), ``code`` the control code of the
    answer (also for a ``timeout``, whose answer was computed and then lost),
    ``fault`` the injected fault this call consumed, if any, and ``client_address``
    the address the request came from (the peer's over HTTP; in process, the
    client's ``local_address``, else ``127.0.0.1``).

    Example::

        [record] = fake.requests
        assert record.message_id == "300" and record.code == 200
    """

    method: str
    path: str
    params: Mapping[str, str] = dataclasses.field(hash=False)
    status: int | None
    code: int | None
    fault: FaultKind | None = None
    client_address: str = "127.0.0.1"  # DEFAULT_CLIENT_ADDRESS, shown as its value

    @property
    def message_id(self) -> str | None:
        """The ``messageId`` parameter as received, or ``None`` when absent."""
        return self.params.get("messageId")

    @property
    def api_key(self) -> str | None:
        """The ``apiKey`` parameter as received, or ``None`` when absent."""
        return self.params.get("apiKey")

    def __repr__(self) -> str:
        shown = redact_params(self.params)
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, params={shown!r}, "
            f"status={self.status!r}, code={self.code!r}, fault={self.fault!r}, "
            f"client_address={self.client_address!r})"
        )

    __str__ = __repr__


@dataclasses.dataclass(slots=True)
class _Message:
    send_at: datetime
    status: MessageStatus = "scheduled"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FakeMailPartner:
    """An in-memory fake of the provider's ``message-cancel`` endpoint, for your tests.

    It keeps scheduled messages and answers as the provider documents, in this order:
    no ``apiKey`` (or blank): code 1; another key than the fake's: 10; no or blank
    ``messageId``: 3; an id it does not know: 4 (with ``schedule_unknown=True``, the
    id is taken as scheduled an hour ahead of the clock instead); already cancelled: 5;
    send time reached (``now >= send_at``): 7, and the message counts as sent; less
    than 5 minutes left (``send_at - now < 5 min``, so exactly 5:00 before still
    cancels): 6; otherwise 200 and the message is cancelled. Answers are JSON, or the
    provider's positional XML with ``_format=xml``; code 200 comes with HTTP 200, 429
    with 429 and any other code with 400 (the SDK reads the body's code either way).

    ``clock`` returns the current aware ``datetime`` (default: now, UTC; see
    :class:`~mailpartner_async.testing.FakeClock`). ``rate_limit_per_minute`` makes
    the fake answer code 429 (HTTP 429, ``Retry-After`` in whole seconds) to a
    client address once that many of its requests were served in the last 60
    seconds of ``rate_clock``, each address counted on its own, as the provider caps
    each IP address (over HTTP the peer's address; in process the client's
    ``local_address``, else ``127.0.0.1``; default
    :func:`time.monotonic`, real elapsed time, so a frozen test clock does not freeze
    the window); ``rate_window`` sets that window in seconds (default 60), shorter to
    test a pace scaled down as a ``RedisRateLimiter`` with the same ``period`` is. Only
    requests answered with a control code other than 429 count: refused ones,
    injected faults, 404s and 405s do not. Thread-safe: one lock guards
    all state; usable from threads, asyncio and trio at once.

    Example::

        fake = FakeMailPartner()
        message_id = fake.schedule(timedelta(hours=1))
        async with fake.async_client() as client:
            await client.cancel(message_id)
        assert fake.status(message_id) == "cancelled"
    """

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        clock: Callable[[], datetime] | None = None,
        schedule_unknown: bool = False,
        rate_limit_per_minute: int | None = None,
        rate_clock: Callable[[], float] | None = None,
        rate_window: float = RATE_WINDOW_SECONDS,
    ) -> None:
        if not _is_text(api_key):
            raise ValueError("api_key must be a non-blank string")
        if rate_limit_per_minute is not None:
            check_count("rate_limit_per_minute", rate_limit_per_minute, minimum=1)
        self._api_key = api_key
        self._clock = clock or _utc_now
        self._schedule_unknown = schedule_unknown
        self._rate_limit = rate_limit_per_minute
        self._rate_clock = rate_clock or time.monotonic
        self._rate_window = check_seconds("rate_window", rate_window)
        self._lock = threading.Lock()
        self._messages: dict[str, _Message] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: collections.deque[list[Any]] = collections.deque()
        # Per client address: when each request the cap counts was served.
        self._served: collections.defaultdict[str, collections.deque[float]] = (
            collections.defaultdict(collections.deque)
        )
        self._ids = itertools.count(1)
        self._asgi_app = FakeASGIApp(self)

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"FakeMailPartner(messages={len(self._messages)}, "
                f"requests={len(self._requests)}, api_key=<set>)"
            )

    @property
    def api_key(self) -> str:
        """The key the fake accepts; its clients send it unless told otherwise."""
        return self._api_key

    @property
    def schedule_unknown(self) -> bool:
        """Whether an id never seen is taken as scheduled an hour ahead (else code 4)."""
        return self._schedule_unknown

    @property
    def rate_limit_per_minute(self) -> int | None:
        """Requests served per sliding window before code 429; ``None``: no cap."""
        return self._rate_limit

    @property
    def rate_window(self) -> float:
        """The sliding window of :attr:`rate_limit_per_minute`, in seconds (60 by default)."""
        return self._rate_window

    # --- the state, for tests --------------------------------------------------------

    def schedule(self, send_at: datetime | timedelta, message_id: str | int | None = None) -> str:
        """Register a message scheduled for ``send_at`` and return its id.

        ``send_at`` is an aware ``datetime`` or a ``timedelta`` from the clock's now
        (negative: already due, so it counts as sent). Without ``message_id`` the fake
        picks a fresh numeric id. A naive ``datetime`` or an id already registered is
        a ``ValueError``.

        Example::

            soon = fake.schedule(timedelta(minutes=3))  # cancelling it answers 6
            fake.schedule(datetime(2030, 1, 1, tzinfo=UTC), message_id=300)
        """
        if isinstance(send_at, timedelta):
            when = self._now() + send_at
        elif isinstance(send_at, datetime):
            when = check_aware(send_at, "send_at")
        else:
            raise TypeError(
                f"send_at must be an aware datetime or a timedelta, got {type(send_at).__name__}"
            )
        with self._lock:
            if message_id is None:
                key = next(str(n) for n in self._ids if str(n) not in self._messages)
            else:
                key = _message_key(message_id)
                if key in self._messages:
                    raise ValueError(f"message id {key!r} is already registered")
            self._messages[key] = _Message(when)
            return key

    def status(self, message_id: str | int) -> MessageStatus:
        """``"scheduled"``, ``"cancelled"`` or ``"sent"`` (send time reached) for an id.

        Raises ``KeyError`` for an id the fake does not know.

        Example::

            message_id = fake.schedule(timedelta(hours=1))
            assert fake.status(message_id) == "scheduled"
        """
        key = _message_key(message_id)
        now = self._now()
        with self._lock:
            message = self._messages.get(key)
            if message is None:
                raise KeyError(f"the fake has no message {key!r}")
            if message.status == "scheduled" and now >= message.send_at:
                message.status = "sent"
            return message.status

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the calls received so far, in order, faulted ones included.

        Example::

            assert [r.message_id for r in fake.requests] == ["300", "301"]
            assert all(r.api_key == fake.api_key for r in fake.requests)
        """
        with self._lock:
            return list(self._requests)

    def fail_next(self, count: int, kind: FaultKind) -> None:
        """Make the next ``count`` calls (whatever their path) fail with ``kind``.

        - ``"connect_error"``: the request never reaches the server; nothing happens
          and the client sees ``httpx.ConnectError``.
        - ``"timeout"``: the server does the work (a cancel takes effect) and the
          answer is lost; the client sees ``httpx.ReadTimeout``.
        - ``"http_503"``: a 503 HTML page without a control code; nothing happens.
        - ``"rate_limit"``: HTTP 429 with code 429 and ``Retry-After: 0``; nothing happens.

        Calls queue up: ``fail_next(1, "timeout")`` then ``fail_next(2, "http_503")``
        fails the next call with a time-out and the two after it with 503. Over the
        ASGI app, ``connect_error`` and ``timeout`` leave the request unanswered until
        the client gives up (a real server cannot refuse a connection it accepted).

        Example::

            fake.fail_next(2, "http_503")
            result = await client.cancel(message_id)  # third attempt succeeds
            assert result.attempts == 3
        """
        if kind not in get_args(FaultKind):
            raise ValueError(f"kind must be one of {get_args(FaultKind)}, got {kind!r}")
        check_count("count", count, minimum=0)
        if count:
            with self._lock:
                self._faults.append([kind, count])

    # --- the sans-I/O core ----------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        params: Iterable[tuple[str, str]],
        *,
        client_address: str = "127.0.0.1",  # DEFAULT_CLIENT_ADDRESS, shown as its value
    ) -> FakeResponse:
        """Answer one request: the whole fake, with no I/O.

        ``path`` is the decoded URL path and ``params`` the decoded query pairs;
        ``client_address`` is the address the request came from, whose own window
        ``rate_limit_per_minute`` counts. Only
        ``GET /v1/message-cancel`` is served (404 and 405 otherwise, as JSON without a
        control code). The call is recorded in :attr:`requests`.

        Example::

            answer = fake.handle("GET", "/v1/message-cancel", [("apiKey", "test-key")])
            assert answer.status == 400  # code 3: no message id
        """
        query = dict(params)
        xml = query.get("_format", "").strip().lower() == "xml"
        with self._lock:
            fault = self._take_fault()
            if fault == "connect_error":
                answer = FakeResponse(0, (), b"", failure="connect_error")
            elif fault == "http_503":
                answer = unavailable_answer()
            elif fault == "rate_limit":
                answer = code_answer(429, xml=xml, extra_headers=(("retry-after", "0"),))
            elif path != ENDPOINT_PATH:
                answer = plain_answer(404, "Not Found")
            elif method.upper() != "GET":
                answer = plain_answer(405, "Method Not Allowed", extra_headers=(("allow", "GET"),))
            else:
                limited = self._rate_limited(client_address, xml)
                answer = limited or code_answer(self._cancel(query), xml=xml)
            if fault == "timeout":
                answer = dataclasses.replace(answer, failure="timeout")
            self._requests.append(
                RecordedRequest(
                    method=method,
                    path=path,
                    params=types.MappingProxyType(query),
                    status=None if answer.failure else answer.status,
                    code=answer.code,
                    fault=fault,
                    client_address=client_address,
                )
            )
            return answer

    def _take_fault(self) -> FaultKind | None:
        if not self._faults:
            return None
        entry = self._faults[0]
        entry[1] -= 1
        if entry[1] == 0:
            self._faults.popleft()
        kind: FaultKind = entry[0]
        return kind

    def _rate_limited(self, client_address: str, xml: bool) -> FakeResponse | None:
        limit = self._rate_limit
        if limit is None:
            return None
        now = self._rate_clock()
        window = self._rate_window
        quiet = [key for key, times in self._served.items() if times[-1] <= now - window]
        for key in quiet:
            del self._served[key]  # nothing of its left in the window: forget the address
        served = self._served[client_address]
        while served and served[0] <= now - window:
            served.popleft()
        if len(served) >= limit:
            wait = max(1, math.ceil(served[0] + window - now))
            return code_answer(429, xml=xml, extra_headers=(("retry-after", str(wait)),))
        served.append(now)
        return None

    def _cancel(self, query: Mapping[str, str]) -> int:
        key = query.get("apiKey", "")
        if not key.strip():
            return 1
        if not hmac.compare_digest(key.encode(), self._api_key.encode()):
            return 10
        message_id = query.get("messageId", "")
        if not message_id.strip():
            return 3
        message = self._messages.get(message_id)
        # Read under the lock, between lookup and update: time and state move together.
        now = self._now()
        if message is None:
            if not self._schedule_unknown:
                return 4
            message = self._messages[message_id] = _Message(now + _UNKNOWN_LEAD)
        if message.status == "cancelled":
            return 5
        if message.status == "sent" or now >= message.send_at:
            message.status = "sent"
            return 7
        if message.send_at - now < CANCEL_CUTOFF:
            return 6
        message.status = "cancelled"
        return 200

    def _now(self) -> datetime:
        return check_aware(self._clock(), "the clock's time")

    # --- wiring ---------------------------------------------------------------------

    def async_transport(self, library: HTTPLibrary = "httpx") -> FakeAsyncTransport:
        """An ``httpx.AsyncBaseTransport`` answering from this fake, in process
        (``httpx2.AsyncBaseTransport`` with ``library="httpx2"``).

        Example::

            async with httpx.AsyncClient(transport=fake.async_transport()) as http:
                response = await http.get(FAKE_BASE_URL + "/message-cancel")
        """
        if library == "httpx2":
            from .._async.fake_transport_httpx2 import (
                FakeAsyncTransport as FakeAsyncHttpx2Transport,
            )

            return FakeAsyncHttpx2Transport(self)  # type: ignore[return-value]
        _check_library(library)
        return FakeAsyncTransport(self)

    def transport(self, library: HTTPLibrary = "httpx") -> FakeTransport:
        """An ``httpx.BaseTransport`` answering from this fake, in process
        (``httpx2.BaseTransport`` with ``library="httpx2"``).

        Example::

            with httpx.Client(transport=fake.transport()) as http:
                response = http.get(FAKE_BASE_URL + "/message-cancel")
        """
        if library == "httpx2":
            from .._sync.fake_transport_httpx2 import FakeTransport as FakeHttpx2Transport

            return FakeHttpx2Transport(self)  # type: ignore[return-value]
        _check_library(library)
        return FakeTransport(self)

    @property
    def asgi_app(self) -> FakeASGIApp:
        """This fake as a plain ASGI 3 app serving ``GET /v1/message-cancel``.

        Example::

            uvicorn.run(fake.asgi_app, port=8025, log_config=uvicorn_log_config())
        """
        return self._asgi_app

    def async_client(self, *, fast_retries: bool = True, **options: Any) -> AsyncMailPartner:
        """A real :class:`~mailpartner_async.AsyncMailPartner` wired to this fake.

        ``options`` go to the constructor; by default the client uses the fake's key,
        ``base_url`` :data:`FAKE_BASE_URL` and no ``rate_limit`` (pass one to test
        pacing). No socket is opened. With ``fast_retries`` (the default) retries wait
        milliseconds (:data:`FAST_RETRY_POLICY`); pass ``False`` for the SDK's real
        backoff and ``Retry-After`` handling. ``transport="httpx2"`` wires it through
        the httpx2 fork instead of httpx. Close it like any client.

        Example::

            async with fake.async_client(max_retries=0) as client:
                result = await client.cancel(message_id)
        """
        library = options.pop("transport", "httpx")
        options = self._client_options(options, fast_retries)
        return AsyncMailPartner(transport=self.async_transport(library), **options)

    def client(self, *, fast_retries: bool = True, **options: Any) -> MailPartner:
        """A real sync :class:`~mailpartner_async.MailPartner` wired to this fake.

        The same defaults as :meth:`async_client`.

        Example::

            with fake.client() as client:
                client.cancel(message_id)
        """
        from .. import MailPartner  # generated module; imported late so ours loads alone

        library = options.pop("transport", "httpx")
        options = self._client_options(options, fast_retries)
        return MailPartner(transport=self.transport(library), **options)

    def _client_options(self, options: dict[str, Any], fast_retries: bool) -> dict[str, Any]:
        if "http_client" in options:
            raise TypeError(
                "the fake wires its own transport; to bring your http_client, build it "
                "on fake.async_transport() or fake.transport()"
            )
        if fast_retries:
            options.setdefault("retry_policy", FAST_RETRY_POLICY)
        options.setdefault("api_key", self._api_key)
        options.setdefault("base_url", FAKE_BASE_URL)
        options.setdefault("rate_limit", None)
        return options


def _check_library(library: object) -> None:
    if library != "httpx":
        raise ConfigurationError(f"the fake's clients run on 'httpx' or 'httpx2', got {library!r}")


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _message_key(message_id: object) -> str:
    if isinstance(message_id, bool) or not isinstance(message_id, str | int):
        raise TypeError(f"message id must be a str or an int, got {type(message_id).__name__}")
    key = str(message_id)
    if not key.strip():
        raise ValueError("message id must not be blank")
    return key
