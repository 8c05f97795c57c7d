"""Which transports a client behaviour test runs on, and the one it runs on now.

The client behaviour tests that talk to a real server (``tests/_async/test_client.py``
and its generated sync twin) run once per transport: any behaviour that differs
between transports is a bug. aiohttp runs on asyncio only, so it is left out when
the session's loop is trio (``--backend trio``; ``all`` runs it in neither, as the
loop of a test is only chosen later).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence

import pytest

__all__ = [
    "ASYNC_TRANSPORTS",
    "CURRENT_TRANSPORT",
    "TRANSPORTS",
    "parametrize_transports",
    "use_transport",
]

ASYNC_TRANSPORTS = ("httpx", "httpx2", "aiohttp")
TRANSPORTS = ("httpx", "httpx2")
CURRENT_TRANSPORT: contextvars.ContextVar[str] = contextvars.ContextVar(
    "CURRENT_TRANSPORT", default="httpx"
)


def parametrize_transports(metafunc: pytest.Metafunc, names: Sequence[str]) -> None:
    """Run each test of ``metafunc`` that uses the real ``server`` once per transport."""
    if "server" not in metafunc.fixturenames or "client_transport" not in metafunc.fixturenames:
        return
    backend = metafunc.config.getoption("--backend")
    chosen = [name for name in names if name != "aiohttp" or backend == "asyncio"]
    metafunc.parametrize("client_transport", chosen, indirect=True)


def use_transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """The body of a ``client_transport`` fixture: sets :data:`CURRENT_TRANSPORT`."""
    name = str(getattr(request, "param", "httpx"))
    token = CURRENT_TRANSPORT.set(name)
    yield name
    CURRENT_TRANSPORT.reset(token)
