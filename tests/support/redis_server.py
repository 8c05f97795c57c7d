"""A real ``redis-server`` on a free loopback port, for the tests of the shared rate limit.

The session fixture :func:`redis_server` starts one process (no persistence) and
stops it at the end. Without ``redis-server`` on the machine the tests that need it
are skipped, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.server import unused_port

__all__ = ["RedisServer", "redis_server"]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; :meth:`stop` and :meth:`start` simulate an outage.

    Without persistence by default (a restarted server is empty); with ``persist_in``
    (a directory) it keeps an append-only file synced on every write, so a server
    killed and started again has every key it acknowledged.
    """

    def __init__(self, executable: str, *, persist_in: str | None = None) -> None:
        self.executable = executable
        self.persist_in = persist_in
        self.port = unused_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - our own argv
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                *self._persistence(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.02)

    def _persistence(self) -> list[str]:
        if self.persist_in is None:
            return ["--save", "", "--appendonly", "no"]
        # Every write on disk before its reply: a killed server loses nothing.
        durable = ["--appendonly", "yes", "--appendfsync", "always"]
        return ["--save", "", "--dir", self.persist_in, *durable]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Killed and started again at once: empty, as without persistence."""
        self.stop()
        self.start()

    def restore(self) -> None:
        """Running and empty again, after a test that stopped it (or not)."""
        try:
            self.flush()
        except OSError:
            self.start()

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(64)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the Redis tests")
        pytest.skip(reason)
    server = RedisServer(executable)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
