"""The event loop a client belongs to, checked on every call."""

from __future__ import annotations

from .._compat import async_loop_token
from .._core.errors import ConfigurationError, MailPartnerError

__all__ = ["AsyncLoopGuard", "on_asyncio"]


class AsyncLoopGuard:
    """Remembers the event loop a client first ran on and refuses any other.

    An HTTP connection pool belongs to one event loop; used from another it hangs
    or fails obscurely, so the client fails first, with a clear message.
    ``asyncio_only`` refuses trio (for transports built on asyncio). A sync client
    runs on no loop (its token is ``None``): nothing to check.
    """

    __slots__ = ("_asyncio_only", "_token")

    def __init__(self, *, asyncio_only: bool = False) -> None:
        self._token: object = None
        self._asyncio_only = asyncio_only

    def check(self) -> None:
        token = async_loop_token()
        if token is None:
            return
        if self._asyncio_only and not on_asyncio(token):
            raise ConfigurationError("this transport runs on asyncio only; use transport='httpx'")
        if self._token is None:
            self._token = token
        elif token != self._token:
            raise MailPartnerError(
                "this client was first used in another event loop; an HTTP connection "
                "pool cannot move between loops: create one client per event loop "
                "(for example in your app's lifespan)"
            )

    def foreign(self) -> bool:
        """Whether the client already ran on an event loop other than this one."""
        return self._token is not None and async_loop_token() != self._token


def on_asyncio(token: object = None) -> bool:
    """Whether the loop of ``token`` (by default the running one) is asyncio."""
    token = async_loop_token() if token is None else token
    backend = getattr(token, "backend_class", None)
    return backend is not None and backend.__module__.endswith("_asyncio")
