"""Issue 20: a fake served by uvicorn logs no key. A real uvicorn in a child process,
asked over real HTTP with the key in the query, and the log it printed."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from mailpartner_async.testing import RedactAPIKeyFilter, uvicorn_log_config

KEY = "leaky-key-0042"
START_DEADLINE = 30.0  # seconds for the child to listen: a failure bound, not a measure


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _served_log(tmp_path: Path, log_config: str) -> str:
    """Serve a fake with ``uvicorn.run(..., log_config=<log_config>)``, cancel once
    with the key in the query, stop it; what it printed."""
    port = _free_port()
    script = textwrap.dedent(f"""
        import uvicorn
        from mailpartner_async.testing import FakeMailPartner, uvicorn_log_config
        fake = FakeMailPartner({KEY!r}, schedule_unknown=True)
        uvicorn.run(fake.asgi_app, host="127.0.0.1", port={port}, log_config={log_config})
    """)
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, "-c", script], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + START_DEADLINE
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.05)
            with httpx.Client(trust_env=False, timeout=10) as http:
                answer = http.get(
                    f"http://127.0.0.1:{port}/v1/message-cancel",
                    params={"apiKey": KEY, "messageId": "300"},
                )
            assert answer.json()["code"] == 200
        finally:
            process.terminate()
            process.wait(timeout=10)
    return log_path.read_text()


def test_uvicorn_with_our_log_config_shows_the_request_without_the_key(tmp_path: Path) -> None:
    log = _served_log(tmp_path, "uvicorn_log_config()")
    assert "/v1/message-cancel?apiKey=[REDACTED]&messageId=300" in log
    assert KEY not in log


def test_uvicorn_with_its_default_log_config_prints_the_key(tmp_path: Path) -> None:
    # Why the page passes log_config: without it, the access log quotes the key.
    assert KEY in _served_log(tmp_path, "uvicorn.config.LOGGING_CONFIG")


def test_the_filter_masks_the_key_in_message_and_arguments_and_keeps_their_shape() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactAPIKeyFilter())
    logger = logging.getLogger("tests.uvicorn_log")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning('%s - "GET %s" %d', "127.0.0.1:5000", f"/v1?apiKey={KEY}&x=1", 200)
        logger.warning(f"inline /v1?apiKey={KEY}")
        logger.warning("%(path)s", {"path": f"/v1?apiKey={KEY}"})
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        '127.0.0.1:5000 - "GET /v1?apiKey=[REDACTED]&x=1" 200',
        "inline /v1?apiKey=[REDACTED]",
        "/v1?apiKey=[REDACTED]",
    ]


def test_the_log_config_is_a_new_dict_each_call_with_the_filter_on_every_handler() -> None:
    first, second = uvicorn_log_config(), uvicorn_log_config()
    assert first == second
    assert first is not second
    assert first["handlers"]
    assert all("redact_api_key" in h["filters"] for h in first["handlers"].values())
    first["handlers"].clear()
    assert uvicorn_log_config()["handlers"]


@pytest.mark.parametrize("option", ["--api-key", None])
def test_serve_fake_logs_no_key_a_request_carried(tmp_path: Path, option: str | None) -> None:
    from tests.cli.test_cli import serving_fake

    options = [option, KEY] if option else []
    with (
        serving_fake(tmp_path / "serve.log", *options) as url,
        httpx.Client(trust_env=False) as http,
    ):
        http.get(f"{url}/message-cancel", params={"apiKey": KEY, "messageId": "1"})
        http.get(f"{url}/nowhere", params={"apiKey": KEY})
    log = (tmp_path / "serve.log").read_text()
    assert "apiKey=[REDACTED]" in log
    assert KEY not in log.replace(f"(API key {KEY!r})", "")
