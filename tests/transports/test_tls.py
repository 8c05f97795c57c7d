"""Issue 20, item 9: real TLS on loopback (trustme certificates), on every transport.

A private CA trusted through ``$SSL_CERT_FILE`` works; a certificate for another host
name, an expired one, one from a CA nobody trusts, and a server speaking plain HTTP on
the TLS port are each an ``APIConnectionError`` naming the cause, not transient, not
retried (the server sees one connection) and without the key: in the error's texts,
in any span or metric point (the SDK's, and aiohttp's instrumentation's), in any log
record (issue 20, item 10).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mailpartner_async import APIConnectionError, AsyncMailPartner, MailPartner
from tests.support.leaks import Recorded, assert_key_absent, texts_of
from tests.support.tls import TLSServer, tls_server

KEY = "s3cr3t-key-0042"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The private CA, trusted the documented way: ``$SSL_CERT_FILE``."""
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return cafile


# The cause each failure must name, as our message words it.
CAUSES = {
    "other-host": "Hostname mismatch",
    "expired": "certificate has expired",
    "untrusted-ca": "unable to get local issuer certificate",
    "plain-http": "does not speak TLS on this port",
}


def _check_refusal(error: APIConnectionError, case: str, server: TLSServer, seen: Seen) -> None:
    assert str(error.message).startswith("TLS refused the connection: ")
    assert CAUSES[case] in error.message
    assert error.transient is False
    assert error.request_sent is False
    assert server.connections == 1  # not retried, although max_retries=3
    _check_no_key(seen, error)


@dataclasses.dataclass
class Seen:
    """What the TLS cases leave to scan for the key (issue 20, item 10): the spans and
    metrics (no opt-in processor; with aiohttp, its instrumentation on too) and every
    log record."""

    recorded: Recorded
    logs: pytest.LogCaptureFixture

    def options(self) -> dict[str, object]:
        return self.recorded.options()


def _check_no_key(seen: Seen, outcome: object) -> None:
    spans = seen.recorded.span_texts()
    assert any('"mailpartner.cancel"' in span for span in spans)
    logs = [seen.logs.text, *(record.getMessage() for record in seen.logs.records)]
    assert_key_absent(KEY, [*seen.recorded.texts(), *texts_of(outcome), *logs])


@pytest.fixture
def seen(caplog: pytest.LogCaptureFixture, client_transport: str) -> Iterator[Seen]:
    caplog.set_level(logging.DEBUG)
    recorded = Recorded()
    with recorded.instrumented(client_transport):
        yield Seen(recorded, caplog)
    recorded.shutdown()


@pytest.fixture
def environment(case: str, request: pytest.FixtureRequest) -> None:
    if case != "untrusted-ca":
        request.getfixturevalue("trusted")


@pytest.mark.parametrize("case", ["ok", *CAUSES])
def test_tls_on_the_sync_transports(
    ca: trustme.CA, case: str, client_transport: str, environment: None, seen: Seen
) -> None:
    with (
        tls_server(ca, case) as server,
        MailPartner(
            KEY,
            base_url=server.base_url,
            transport=client_transport,  # type: ignore[arg-type]
            max_retries=3,
            **seen.options(),  # type: ignore[arg-type]
        ) as client,
    ):
        if case == "ok":
            result = client.cancel("300")
            assert result.code == 200
            _check_no_key(seen, result)
            return
        with pytest.raises(APIConnectionError) as caught:
            client.cancel("300")
    _check_refusal(caught.value, case, server, seen)


@pytest.mark.anyio
@pytest.mark.parametrize("case", ["ok", *CAUSES])
async def test_tls_on_the_async_transports(
    ca: trustme.CA, case: str, client_transport: str, environment: None, seen: Seen
) -> None:
    with tls_server(ca, case) as server:
        async with AsyncMailPartner(
            KEY,
            base_url=server.base_url,
            transport=client_transport,  # type: ignore[arg-type]
            max_retries=3,
            **seen.options(),  # type: ignore[arg-type]
        ) as client:
            if case == "ok":
                result = await client.cancel("300")
                assert result.code == 200
                _check_no_key(seen, result)
                return
            with pytest.raises(APIConnectionError) as caught:
                await client.cancel("300")
    _check_refusal(caught.value, case, server, seen)


def test_a_refused_certificate_survives_pickling_as_not_transient(
    ca: trustme.CA, trusted: Path
) -> None:
    import pickle

    with (
        tls_server(ca, "expired") as server,
        MailPartner(KEY, base_url=server.base_url, max_retries=0) as client,
        pytest.raises(APIConnectionError) as caught,
    ):
        client.cancel("300")
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert copy.transient is False
    assert copy.message == caught.value.message


def test_a_transient_connection_failure_is_still_retried(trusted: Path) -> None:
    # A server that closes during the handshake: not a TLS refusal; retried.
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    seen: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            seen.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            MailPartner(KEY, base_url=f"https://localhost:{port}/v1", max_retries=2) as client,
            pytest.raises(APIConnectionError) as caught,
        ):
            client.cancel("300")
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        thread.join(timeout=10)
    assert caught.value.transient is True
    assert len(seen) == 3
