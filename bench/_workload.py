"""One client's workload, run in a fresh interpreter so its CPU and peak RSS are its own.

Usage: ``python bench/_workload.py '<json spec>'``; prints one JSON line. The spec
names the client ``kind``, the ``base_url``, the ``concurrencies`` to run in rising
order, ``rounds``, the nginx worker pid (``server_pid``, 0 for none) and either the
requests per round ``n`` (a number, or a mapping from concurrency to a number) or
``round_seconds`` and ``max_n``: then a round is sized from the warm-up's rate to
last about that long. For each concurrency it runs a warm-up, then the rounds, each
timed by wall clock, by this process's CPU (all threads) and the time its threads
waited for a CPU (run queue), and by the server worker's CPU around it.

Peak RSS is read from ``VmHWM`` (this image's own peak): ``ru_maxrss`` would carry
the parent's RSS over from before ``exec``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

API_KEY = "k"
# A literal, not testing.code_answer: this interpreter's peak RSS is measured, the
# baseline clients' included, so it imports no SDK module it does not bench.
ANSWER = b'{"success":true,"code":200,"message":"The email has been canceled."}'
RoundFn = Callable[[int, int], int]  # (first id, count) -> failures


def _server_cpu(pid: int) -> float:
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _run_queue_wait() -> float:
    """Seconds this process's live threads have waited for a CPU so far."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (FileNotFoundError, IndexError):
            continue
    return total / 1e9


# --- the raw baselines -------------------------------------------------------------------


def requests_seq(base_url: str, _concurrency: int) -> tuple[RoundFn, Callable[[], None]]:
    """The provider's sample: ``requests.get`` in a loop, a new connection each time."""
    import requests

    url = f"{base_url}/message-cancel"

    def run(first: int, count: int) -> int:
        failures = 0
        for i in range(first, first + count):
            response = requests.get(
                url, params={"apiKey": API_KEY, "messageId": str(i)}, timeout=10
            )
            failures += response.json().get("code") != 200
        return failures

    return run, lambda: None


def httpx_seq(base_url: str, _concurrency: int) -> tuple[RoundFn, Callable[[], None]]:
    """A sequential ``httpx.Client``: one kept-alive connection."""
    import httpx

    url = f"{base_url}/message-cancel"

    client = httpx.Client(timeout=10)

    def run(first: int, count: int) -> int:
        failures = 0
        for i in range(first, first + count):
            response = client.get(url, params={"apiKey": API_KEY, "messageId": str(i)})
            failures += response.json().get("code") != 200
        return failures

    return run, client.close


def _gather_rounds(
    loop: asyncio.AbstractEventLoop, one: Callable[[int], Awaitable[bool]], concurrency: int
) -> RoundFn:
    semaphore = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> bool:
        async with semaphore:
            return await one(i)

    async def gather(first: int, count: int) -> int:
        oks = await asyncio.gather(*(guarded(i) for i in range(first, first + count)))
        return oks.count(False)

    return lambda first, count: loop.run_until_complete(gather(first, count))


def _httpx_like_async(module_name: str, base_url: str, concurrency: int) -> Any:
    """Raw ``AsyncClient`` of httpx or httpx2 (same API) + ``asyncio.gather`` under a
    semaphore, the pool sized to match."""
    import importlib

    module = importlib.import_module(module_name)
    url = f"{base_url}/message-cancel"
    loop = asyncio.new_event_loop()
    limits = module.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = module.AsyncClient(timeout=10, limits=limits)

    async def one(i: int) -> bool:
        response = await client.get(url, params={"apiKey": API_KEY, "messageId": str(i)})
        return bool(response.json().get("code") == 200)

    def close() -> None:
        loop.run_until_complete(client.aclose())
        loop.close()

    return _gather_rounds(loop, one, concurrency), close


def raw_httpx(base_url: str, concurrency: int) -> Any:
    """Raw ``httpx.AsyncClient`` + ``asyncio.gather`` under a semaphore."""
    return _httpx_like_async("httpx", base_url, concurrency)


def raw_httpx2(base_url: str, concurrency: int) -> Any:
    """Raw ``httpx2.AsyncClient`` (the fork, same API) + ``asyncio.gather``."""
    return _httpx_like_async("httpx2", base_url, concurrency)


def raw_aiohttp(base_url: str, concurrency: int) -> Any:
    """Raw ``aiohttp.ClientSession`` + ``asyncio.gather`` under a semaphore."""
    import aiohttp

    url = f"{base_url}/message-cancel"

    loop = asyncio.new_event_loop()

    async def make() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    session = loop.run_until_complete(make())

    async def one(i: int) -> bool:
        params = {"apiKey": API_KEY, "messageId": str(i)}
        async with session.get(url, params=params) as response:
            body = await response.json()
        return bool(body.get("code") == 200)

    def close() -> None:
        loop.run_until_complete(session.close())
        loop.close()

    return _gather_rounds(loop, one, concurrency), close


# --- the SDK -------------------------------------------------------------------------------

TRANSPORTS = ("httpx", "httpx2", "aiohttp")
METHODS = ("gather", "cancel_many", "cancel_iter")


def _sdk(url: str, concurrency: int, method: str, transport: Any) -> Any:
    """``AsyncMailPartner(transport=...)``, as the SDK builds it for a user who asks
    for ``max_concurrency`` and no rate limit; ``method`` is one of ``METHODS``:
    ``asyncio.gather(*(client.cancel(i) for i in ids))``, ``cancel_many`` or
    ``cancel_iter``."""
    from mailpartner_async import AsyncMailPartner

    loop = asyncio.new_event_loop()

    async def make() -> Any:
        return AsyncMailPartner(
            api_key=API_KEY,
            base_url=url,
            rate_limit=None,
            max_concurrency=concurrency,
            transport=transport,
        )

    client = loop.run_until_complete(make())

    async def gather(first: int, count: int) -> int:
        results = await asyncio.gather(
            *(client.cancel(i) for i in range(first, first + count)), return_exceptions=True
        )
        return sum(isinstance(r, BaseException) for r in results)

    async def cancel_many(first: int, count: int) -> int:
        outcomes = await client.cancel_many(range(first, first + count), concurrency=concurrency)
        assert len(outcomes) == count
        return sum(not o.ok for o in outcomes)

    async def cancel_iter(first: int, count: int) -> int:
        seen = failures = 0
        async for outcome in client.cancel_iter(
            range(first, first + count), concurrency=concurrency
        ):
            seen += 1
            failures += not outcome.ok
        assert seen == count
        return failures

    chosen = {"gather": gather, "cancel_many": cancel_many, "cancel_iter": cancel_iter}[method]

    def close() -> None:
        loop.run_until_complete(client.aclose())
        loop.close()

    return (lambda first, count: loop.run_until_complete(chosen(first, count))), close


def sync_cancel_many(url: str, concurrency: int) -> Any:
    """``MailPartner.cancel_many``: the sync client (httpx), threads for concurrency."""
    from mailpartner_async import MailPartner

    client = MailPartner(
        api_key=API_KEY, base_url=url, max_concurrency=concurrency, rate_limit=None
    )

    def run(first: int, count: int) -> int:
        outcomes = client.cancel_many(range(first, first + count), concurrency=concurrency)
        assert len(outcomes) == count
        return sum(not o.ok for o in outcomes)

    return run, client.close


def _sdk_kind(transport: str, method: str) -> Callable[[str, int], Any]:
    return lambda url, concurrency: _sdk(url, concurrency, method, transport)


KINDS: dict[str, Callable[[str, int], Any]] = {
    "requests_seq": requests_seq,
    "httpx_seq": httpx_seq,
    "raw_httpx": raw_httpx,
    "raw_httpx2": raw_httpx2,
    "raw_aiohttp": raw_aiohttp,
    **{f"sdk_{t}_{m}": _sdk_kind(t, m) for t in TRANSPORTS for m in METHODS},
    "sync_cancel_many": sync_cancel_many,
}

# The library each kind needs besides the SDK (import name), and the SDK transport.
_LIBRARY = {"raw_httpx": "httpx", "raw_httpx2": "httpx2", "raw_aiohttp": "aiohttp"}
_SDK_TRANSPORT = {f"sdk_{t}_{m}": t for t in TRANSPORTS for m in METHODS}


def missing_feature(kind: str) -> str | None:
    """Why this kind cannot run here (library not installed, SDK without the
    transport or method), or None if it can."""
    import importlib.util

    library = _LIBRARY.get(kind) or _SDK_TRANSPORT.get(kind)
    if library is not None and importlib.util.find_spec(library) is None:
        return f"{library} is not installed"
    if kind not in _SDK_TRANSPORT and kind != "sync_cancel_many":
        return None
    import mailpartner_async

    if kind == "sync_cancel_many":
        if not hasattr(mailpartner_async, "MailPartner"):
            return "mailpartner_async.MailPartner does not exist"
        return None
    client_class = mailpartner_async.AsyncMailPartner
    method = kind.removeprefix(f"sdk_{_SDK_TRANSPORT[kind]}_")
    if method != "gather" and not hasattr(client_class, method):
        return f"AsyncMailPartner.{method} does not exist"
    if "transport" not in inspect.signature(client_class.__init__).parameters:
        return "AsyncMailPartner has no transport= argument"
    return None


# --- cancel_iter memory ----------------------------------------------------------------------


def iter_rss(count: int) -> dict[str, Any]:
    """Peak RSS of one ``cancel_iter`` over ``count`` ids from a generator.

    The answers come from an in-process ``httpx.MockTransport``: what is measured is
    the SDK's batch machinery (ids pulled lazily, outcomes not kept), at several
    thousand ids a second instead of the few hundred a socket allows. The peak is
    read after each power of ten of outcomes, so one run gives the peak over its
    first 1,000, 10,000, ... ids as well as over all of them.
    """
    import httpx

    from mailpartner_async import AsyncMailPartner

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=ANSWER, headers={"Content-Type": "application/json"})

    def ids() -> Iterator[int]:
        yield from range(count)

    checkpoints: dict[str, float] = {}

    async def main() -> tuple[int, int]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        async with AsyncMailPartner(
            api_key=API_KEY, base_url="http://127.0.0.1:9/v1", rate_limit=None, http_client=http
        ) as client:
            seen = failures = 0
            next_checkpoint = 1000
            async for outcome in client.cancel_iter(ids()):
                seen += 1
                failures += not outcome.ok
                if seen == next_checkpoint:
                    checkpoints[str(seen)] = _peak_rss_mb()
                    next_checkpoint *= 10
        await http.aclose()
        return seen, failures

    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    seen, failures = asyncio.run(main())
    checkpoints[str(seen)] = _peak_rss_mb()
    return {
        "ids": count,
        "seen": seen,
        "failures": failures,
        "wall": time.perf_counter() - started,
        "rss_before_mb": rss_before,
        "peak_rss_mb": checkpoints,
    }


def rate_check(url: str, count: int, per_minute: int) -> dict[str, Any]:
    """``count`` ids through one client paced at ``per_minute``, default concurrency."""
    from mailpartner_async import AsyncMailPartner

    async def main() -> tuple[str, list[bool]]:
        async with AsyncMailPartner(api_key=API_KEY, base_url=url, rate_limit=per_minute) as client:
            if hasattr(client, "cancel_many"):
                outcomes = await client.cancel_many(range(count))
                return "cancel_many", [o.ok for o in outcomes]
            results = await asyncio.gather(
                *(client.cancel(i) for i in range(count)), return_exceptions=True
            )
            return "gather", [not isinstance(r, BaseException) for r in results]

    started = time.perf_counter()
    method, oks = asyncio.run(main())
    return {
        "method": method,
        "wall": time.perf_counter() - started,
        "outcomes": len(oks),
        "failures": oks.count(False),
    }


# --- driver ------------------------------------------------------------------------------------


def _round_size(spec: dict[str, Any], concurrency: int, warmup_rate: float) -> int:
    if "n" in spec:
        n = spec["n"]
        return int(n[str(concurrency)] if isinstance(n, dict) else n)
    wanted = int(warmup_rate * spec["round_seconds"])
    return max(2 * concurrency, 50, min(wanted, int(spec["max_n"])))


def run(spec: dict[str, Any]) -> dict[str, Any]:
    kind, url, server_pid = spec["kind"], spec["base_url"], spec.get("server_pid", 0)
    if kind == "iter_rss":
        return iter_rss(spec["n"])
    if kind == "rate_check":
        return rate_check(url, spec["n"], spec["rate"])
    levels = []
    next_id = 0
    for concurrency in spec["concurrencies"]:
        round_fn, close = KINDS[kind](url, concurrency)
        # Warm up (connections, lazy imports), then time a short pass to size the rounds.
        warmup, calibration = concurrency + 10, max(3 * concurrency, 30)
        round_fn(next_id, warmup)
        started = time.perf_counter()
        round_fn(next_id + warmup, calibration)
        rate = calibration / (time.perf_counter() - started)
        next_id += warmup + calibration
        count = _round_size(spec, concurrency, rate)
        rounds = []
        for _ in range(spec["rounds"]):
            server_before, waited_before = _server_cpu(server_pid), _run_queue_wait()
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            failures = round_fn(next_id, count)
            wall = time.perf_counter() - wall_before
            cpu = time.process_time() - cpu_before
            next_id += count
            rounds.append(
                {
                    "n": count,
                    "wall": wall,
                    "cpu": cpu,
                    "cpu_wait": _run_queue_wait() - waited_before,
                    "server_cpu": _server_cpu(server_pid) - server_before,
                    "failures": failures,
                }
            )
        close()
        levels.append({"concurrency": concurrency, "rounds": rounds, "peak_rss_mb": _peak_rss_mb()})
    return {"kind": kind, "levels": levels}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
