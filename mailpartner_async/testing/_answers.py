"""The provider's answers as bytes: control-code bodies in JSON or positional XML.

Pure functions, no state: the fake decides *which* answer to give, this module only
spells it the way the provider does, with its messages (``PROVIDER_MESSAGES``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Final, Literal

from .._core.models import PROVIDER_MESSAGES

__all__ = [
    "Failure",
    "FakeResponse",
    "code_answer",
    "plain_answer",
    "unavailable_answer",
]

Failure = Literal["connect_error", "timeout"]

_JSON: Final = "application/json"
_XML: Final = "application/xml; charset=utf-8"


@dataclasses.dataclass(frozen=True, slots=True)
class FakeResponse:
    """What the fake answers one request: an HTTP answer, or a failure to act out.

    When ``failure`` is ``None`` the transport sends ``status``, ``headers`` and
    ``body``; ``code`` is the control code the body carries, if any. Otherwise no
    answer must reach the client: ``"connect_error"`` (the request never reached the
    server; nothing was done) or ``"timeout"`` (the server did the work and the
    answer was lost).

    Example::

        answer = fake.handle("GET", "/v1/message-cancel", [("apiKey", "test-key")])
        assert answer.status == 400 and b'"code": 3' in answer.body
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    code: int | None = None
    failure: Failure | None = None


def code_answer(
    code: int,
    *,
    xml: bool,
    status: int | None = None,
    message: str | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> FakeResponse:
    """The provider's answer carrying control ``code``, in JSON or positional XML.

    The HTTP status is 200 for code 200, 429 for code 429 and 400 for any other
    code unless ``status`` says otherwise (the provider does not document it; the
    SDK decides by the body's code whatever the status). The message is the
    provider's wording for ``code`` unless ``message`` gives another text.

    >>> code_answer(4, xml=False).body
    b'{"success": false, "code": 4, "message": "Message not found"}'
    """
    success = code == 200
    if message is None:
        message = PROVIDER_MESSAGES.get(code, "")
    if status is None:
        status = 200 if success else 429 if code == 429 else 400
    if xml:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<result><entry>{'true' if success else 'false'}</entry>"
            f"<entry>{code}</entry>"
            f"<entry><![CDATA[{message}]]></entry></result>\n"
        ).encode()
        content_type = _XML
    else:
        body = json.dumps({"success": success, "code": code, "message": message}).encode()
        content_type = _JSON
    return FakeResponse(status, (("content-type", content_type), *extra_headers), body, code)


def plain_answer(
    status: int, detail: str, *, extra_headers: tuple[tuple[str, str], ...] = ()
) -> FakeResponse:
    """A JSON answer without a control code (``{"detail": ...}``), as routers send."""
    body = json.dumps({"detail": detail}).encode()
    return FakeResponse(status, (("content-type", _JSON), *extra_headers), body)


def unavailable_answer() -> FakeResponse:
    """A gateway's 503 page: HTML, no control code, so clients retry it."""
    body = b"<html><body><h1>503 Service Unavailable</h1></body></html>\n"
    return FakeResponse(503, (("content-type", "text/html; charset=utf-8"),), body)
