"""The one transport parametrisation: which transports a test runs on, under which loop.

A test that takes ``client_transport`` (directly, or through a fixture that takes it)
runs once per transport, with the transport's name as the value; any behaviour that
differs between transports is a bug. Which transports depends on the test's kind:

- an anyio test (``anyio_backend``) runs on every (event loop, async transport) pair
  the loop has, chosen together with its loop: aiohttp runs on asyncio only, so the
  (trio, aiohttp) pair is never made, and a plain ``pytest`` (``--backend all``)
  runs aiohttp on asyncio;
- a sync test that runs a loop itself (``run_backend``, for ``anyio.run``) gets the
  same pairs, as ``run_backend`` and ``client_transport``;
- any other test runs on each sync transport.

tests/conftest.py's ``pytest_generate_tests`` calls :func:`parametrize`; no other
module parametrizes transports. A suite whose helpers build the clients (the client
tests of ``tests/_async/``) sets :data:`CURRENT_TRANSPORT` for them with
:func:`use_transport`, from a fixture that takes ``client_transport``. A new
transport is one more name here.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

import pytest

__all__ = [
    "ASYNC_TRANSPORTS",
    "CURRENT_TRANSPORT",
    "LOOP_TRANSPORTS",
    "TRANSPORTS",
    "parametrize",
    "use_transport",
]

ASYNC_TRANSPORTS = ("httpx", "httpx2", "aiohttp")
TRANSPORTS = ("httpx", "httpx2")
# The async transports each event loop runs.
LOOP_TRANSPORTS = {
    "asyncio": ASYNC_TRANSPORTS,
    "trio": tuple(name for name in ASYNC_TRANSPORTS if name != "aiohttp"),
}
CURRENT_TRANSPORT: contextvars.ContextVar[str] = contextvars.ContextVar(
    "CURRENT_TRANSPORT", default="httpx"
)


def parametrize(metafunc: pytest.Metafunc, backends: Sequence[str]) -> None:
    """Parametrize ``metafunc`` by loop (``backends``) and by transport, as above."""
    names = metafunc.fixturenames
    if "client_transport" not in names:
        if "anyio_backend" in names:
            metafunc.parametrize("anyio_backend", backends, scope="session", indirect=True)
        return
    loop = next((name for name in ("anyio_backend", "run_backend") if name in names), None)
    if loop is None:
        metafunc.parametrize("client_transport", TRANSPORTS)
        return
    pairs = [(backend, name) for backend in backends for name in LOOP_TRANSPORTS[backend]]
    ids = [f"{backend}-{name}" for backend, name in pairs]
    if loop == "anyio_backend":
        metafunc.parametrize(
            (loop, "client_transport"), pairs, ids=ids, scope="session", indirect=[loop]
        )
    else:
        metafunc.parametrize((loop, "client_transport"), pairs, ids=ids)


@contextlib.contextmanager
def use_transport(name: str) -> Iterator[str]:
    """Set :data:`CURRENT_TRANSPORT` to ``name`` while the block runs."""
    token = CURRENT_TRANSPORT.set(name)
    try:
        yield name
    finally:
        CURRENT_TRANSPORT.reset(token)
