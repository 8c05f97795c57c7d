"""ResponseInfo: the HTTP status and headers of the attempt that decided a call.

A :class:`~mailpartner_async.CancelResult` (``result.response``) and an error
(``error.response``) carry one, so a support ticket can quote the status and the
provider's request id. Header values are shown redacted: a server may echo the key.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Final

from .secrets import SecretText, redact

__all__ = ["REQUEST_ID_HEADERS", "ResponseInfo"]

REQUEST_ID_HEADERS: Final = (
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "x-amzn-requestid",
    "x-amz-request-id",
)
"""Headers read as the provider's request id, first found wins (names lowercase)."""


class ResponseInfo:
    """The HTTP status and headers of one answer, header values redacted.

    ``headers`` maps lowercase names to values with the API key masked: ``apiKey=``
    values, and ``secret``, the key of the request, wherever a value echoes it. They
    are redacted as the answer arrives: neither the server's raw text nor the key is
    kept, so no copy or pickle of a result can hold them. ``request_id`` is the first
    of :data:`REQUEST_ID_HEADERS` the answer carried, or ``None`` (the provider sends
    none today).

    Example::

        result = await client.cancel("300")
        print(result.response.status, result.response.request_id)
    """

    __slots__ = ("_headers", "status")

    status: int

    def __init__(
        self, status: int, headers: Mapping[str, str], *, secret: SecretText = None
    ) -> None:
        self.status = status
        shown = {name.lower(): redact(value, secret) for name, value in headers.items()}
        self._headers: Mapping[str, str] = types.MappingProxyType(shown)

    @property
    def headers(self) -> Mapping[str, str]:
        """The answer's headers, read-only, names lowercase, values redacted."""
        return self._headers

    @property
    def request_id(self) -> str | None:
        """The provider's id for this request, if its answer named one."""
        headers = self.headers
        for name in REQUEST_ID_HEADERS:
            value = headers.get(name)
            if value:
                return value
        return None

    def __repr__(self) -> str:
        return f"ResponseInfo(status={self.status}, request_id={self.request_id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseInfo):
            return NotImplemented
        return self.status == other.status and self.headers == other.headers

    def __hash__(self) -> int:
        return hash((self.status, tuple(sorted(self.headers.items()))))

    def __reduce__(self) -> tuple[object, ...]:
        return (ResponseInfo, (self.status, dict(self.headers)))
