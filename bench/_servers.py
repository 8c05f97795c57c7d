"""The servers the bench talks to: nginx with a fixed answer, and a counting 429 server.

nginx runs with one worker from a config generated in a temp dir, on free loopback
ports: one answers at once, the other after 20 ms (``echo_sleep`` of the echo
module), both with the provider's JSON for a successful cancel.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mailpartner_async.testing._answers import code_answer

__all__ = [
    "ANSWER",
    "CountingServer",
    "Nginx",
    "RedisServer",
    "cpu_seconds",
    "find_nginx",
    "free_port",
    "start_nginx",
]

# The provider's answers as the testing fake spells them: one wording for every server.
ANSWER = code_answer(200, xml=False).body.decode()
_RATE_LIMITED = code_answer(429, xml=False).body
ECHO_MODULE_DIRS = (
    "/usr/lib/nginx/modules",
    "/usr/lib64/nginx/modules",
    "/usr/share/nginx/modules",
)

_CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{load_echo}

events {{
    worker_connections 8192;
}}

http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    default_type application/json;

    server {{
        listen 127.0.0.1:{port_0ms} backlog=4096;
        location = /v1/message-cancel {{
            return 200 '{answer}';
        }}
    }}

    server {{
        listen 127.0.0.1:{port_20ms} backlog=4096;
        location = /v1/message-cancel {{
            echo_sleep 0.020;
            echo_exec @answer;
        }}
        location @answer {{
            return 200 '{answer}';
        }}
    }}
}}
"""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_nginx() -> str:
    """The nginx binary, or a ``SystemExit`` that says how to get it."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit(
        "nginx not found: install it (Debian: apt-get install nginx libnginx-mod-http-echo)"
    )


def _echo_module() -> str:
    for directory in ECHO_MODULE_DIRS:
        module = Path(directory, "ngx_http_echo_module.so")
        if module.exists():
            return str(module)
    raise SystemExit(
        "nginx echo module not found: install it (Debian: apt-get install libnginx-mod-http-echo)"
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class Nginx:
    """A running nginx: its ports and the pid of its only worker."""

    port_0ms: int
    port_20ms: int
    worker_pid: int
    version: str

    def base_url(self, latency_ms: int) -> str:
        port = self.port_0ms if latency_ms == 0 else self.port_20ms
        return f"http://127.0.0.1:{port}/v1"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"nginx exited at start:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"nginx did not listen on {port} within 10 s")


def _worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = children.read_text().split()
        if pids:
            return int(pids[0])
        time.sleep(0.05)
    raise SystemExit("nginx started no worker process")


@contextlib.contextmanager
def start_nginx() -> Iterator[Nginx]:
    """Run nginx (one worker) on two free ports for the duration of the block."""
    binary = find_nginx()
    version = subprocess.run(  # noqa: S603 (our own nginx binary)
        [binary, "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    with tempfile.TemporaryDirectory(prefix="mailpartner-bench-") as tmp:
        port_0ms, port_20ms = free_port(), free_port()
        while port_20ms == port_0ms:
            port_20ms = free_port()
        config = Path(tmp, "nginx.conf")
        config.write_text(
            _CONFIG.format(
                tmp=tmp,
                load_echo=f"load_module {_echo_module()};",
                port_0ms=port_0ms,
                port_20ms=port_20ms,
                answer=ANSWER,
            )
        )
        log = Path(tmp, "stderr.log")
        with log.open("wb") as stderr:
            process = subprocess.Popen(  # noqa: S603
                [binary, "-p", tmp, "-c", str(config), "-e", f"{tmp}/error.log"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            _wait_for_port(port_0ms, process, log)
            _wait_for_port(port_20ms, process, log)
            yield Nginx(port_0ms, port_20ms, _worker_pid(process.pid), version)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class CountingServer:
    """A small HTTP/1.1 server enforcing "at most ``per_minute`` requests a minute".

    It keeps the times of the requests it accepted in the last 60 seconds (a sliding
    window, the strictest reading of the provider's cap) and answers code 429, in
    the status and the body, to any request beyond the cap. ``arrivals`` holds the
    arrival time (``time.monotonic()``) of every request, accepted or not. It runs its own event
    loop in a thread; at tens of requests a second it is far from being a bottleneck.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.accepted = 0
        self.rejected = 0
        self.max_in_window = 0
        self.arrivals: list[float] = []  # time.monotonic() of every request, in order
        self._window: collections.deque[float] = collections.deque()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> CountingServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def _admit(self) -> bool:
        now = time.monotonic()
        window = self._window
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= self.per_minute:
            self.rejected += 1
            return False
        window.append(now)
        self.accepted += 1
        self.max_in_window = max(self.max_in_window, len(window))
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"GET "):
                    break
                self.arrivals.append(time.monotonic())
                if self._admit():
                    status, body = b"200 OK", ANSWER.encode()
                else:
                    status = b"429 Too Many Requests"
                    body = _RATE_LIMITED
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class RedisServer:
    """A ``redis-server`` on a free loopback port, without persistence.

    :meth:`stop` and :meth:`start` make an outage; a restarted server has forgotten
    everything, as a Redis without persistence does.
    """

    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise SystemExit("the fleet bench needs redis-server: apt-get install redis-server")
        self.executable = executable
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        argv = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        self._process = subprocess.Popen(  # noqa: S603 - a fixed argv
            [*argv, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)

    def flushall(self) -> None:
        """Every key gone, the server still running (a ``FLUSHALL``)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(64)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
