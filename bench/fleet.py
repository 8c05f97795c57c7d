"""The fleet bench: worker processes sharing one RedisRateLimiter, against a counting server.

Starts a ``redis-server`` (no persistence) and a :class:`CountingServer` that answers
code 429 past ``--rate-limit`` requests in any 60 seconds and records the arrival time
of every request; then ``--processes`` worker processes, each with its own
``AsyncMailPartner`` on a ``RedisRateLimiter`` of the same Redis and key, cancel
``--ids`` ids in all (an equal share each, through ``cancel_many``), started together.
Prints one table: the time taken against the time the cap allows
(``ids / rate_limit * period``), the 429s the server answered, the retries the
clients made, and the busiest window: the most arrivals in any closed window of
``period`` seconds, computed exactly over every arrival.

``--outage AT,SECONDS`` kills Redis ``AT`` seconds into the run and starts it again
(empty) ``SECONDS`` later, to measure pacing while it is away and at the hand-over:
the table then adds the busiest window that spans the loss, and the one that spans
the return. While Redis is away each worker paces at its share of the fleet (the
limiters' heartbeats; no ``fallback_rate_limit``), unless ``--fallback N`` gives one.
``--flushall AT`` wipes Redis (``FLUSHALL``) ``AT`` seconds in instead. Scale the run
with ``--period`` (the limiter's window; the server's stays at 60 s, with the cap
scaled to match).

    python bench/fleet.py [--processes 4] [--ids 10000] [--rate-limit 2000] [--period 60]
                          [--outage AT,SECONDS | --flushall AT] [--fallback N]
                          [--markdown PATH]

Benchmarks only print: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from _servers import CountingServer, RedisServer

HERE = Path(__file__).resolve()


def busiest_window(arrivals: Sequence[float], period: float) -> tuple[int, float]:
    """The most arrivals in any closed window of ``period`` s, and where it starts.

    Exact: every window that could hold the most starts at an arrival, and a
    two-pointer sweep counts each in O(n).
    """
    times = sorted(arrivals)
    best, best_start, end = 0, 0.0, 0
    for begin, start in enumerate(times):
        end = max(end, begin)
        while end + 1 < len(times) and times[end + 1] <= start + period:
            end += 1
        if end - begin + 1 > best:
            best, best_start = end - begin + 1, start
    return best, best_start


# --- one worker process -----------------------------------------------------------------


def worker(argv: Sequence[str]) -> None:
    """``fleet.py --worker REDIS_URL KEY RATE PERIOD FALLBACK BASE_URL FIRST COUNT``."""
    import anyio

    from mailpartner_async import AsyncMailPartner
    from mailpartner_async.redis import RedisRateLimiter

    redis_url, key, rate, period, fallback, base_url, first, count = argv

    async def run() -> dict[str, int]:
        limiter = RedisRateLimiter(
            redis_url,
            rate_limit=int(rate),
            key=key,
            period=float(period),
            fallback_rate_limit=int(fallback) or None,  # 0: the fleet share
        )
        async with AsyncMailPartner("k", base_url=base_url, rate_limiter=limiter) as client:
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)
            ids = range(int(first), int(first) + int(count))
            outcomes = await client.cancel_many(ids)
        results = [outcome.result for outcome in outcomes if outcome.result is not None]
        return {
            "ok": sum(outcome.ok for outcome in outcomes),
            "failed": sum(not outcome.ok for outcome in outcomes),
            "retries": sum(result.attempts - 1 for result in results),
        }

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(anyio.run(run)), flush=True)


# --- the driver -------------------------------------------------------------------------


def start_fleet(
    args: argparse.Namespace, redis_url: str, base_url: str
) -> list[subprocess.Popen[str]]:
    key = f"fleet-bench-{uuid.uuid4().hex}"
    share = args.ids // args.processes
    fallback = args.fallback or 0
    processes = []
    for n in range(args.processes):
        count = share if n < args.processes - 1 else args.ids - share * n
        argv = [redis_url, key, args.rate_limit, args.period, fallback, base_url, n * share, count]
        processes.append(
            subprocess.Popen(  # noqa: S603 - this script, fixed arguments
                [sys.executable, str(HERE), "--worker", *map(str, argv)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"a worker did not start: {line!r} {process.stderr}")
    return processes


def outage(redis: RedisServer, at: float, seconds: float | None) -> threading.Thread:
    """Redis killed at ``at`` and started again ``seconds`` later; wiped if ``None``."""

    def run() -> None:
        time.sleep(at)
        if seconds is None:
            redis.flushall()
            return
        redis.stop()
        time.sleep(seconds)
        redis.start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def run(args: argparse.Namespace) -> list[str]:
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    allowed = args.ids / args.rate_limit * args.period
    server_cap = round(args.rate_limit * 60 / args.period)
    print(f"fleet: {args.ids} ids, {args.processes} processes, about {allowed:.0f} s", flush=True)
    with RedisServer() as redis, CountingServer(server_cap) as server:
        processes = start_fleet(args, redis.url, server.base_url())
        started = time.monotonic()
        outage_thread = None
        if args.outage:
            outage_thread = outage(redis, *args.outage)
        elif args.flushall is not None:
            outage_thread = outage(redis, args.flushall, None)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        totals = {"ok": 0, "failed": 0, "retries": 0}
        gone = back = wiped = 0
        for process in processes:
            out, err = process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"a worker failed:\n{err}")
            for name, value in json.loads(out.strip().splitlines()[-1]).items():
                totals[name] += value
            gone += err.count("unreachable")
            back += err.count("is back: pacing")
            wiped += err.count("keys were gone")
        wall = time.monotonic() - started
        if outage_thread is not None:
            outage_thread.join()
        arrivals = [t - started for t in server.arrivals]
        rejected = server.rejected
    busiest, where = busiest_window(arrivals, args.period)
    say(
        f"### Fleet: {args.processes} processes, {args.ids:,} ids, "
        f"one RedisRateLimiter(rate_limit={args.rate_limit}, period={args.period:g})"
    )
    say()
    rows = [
        ("time taken (go to last answer)", f"{wall:.1f} s"),
        ("time the cap allows (ids / rate x period)", f"{allowed:.1f} s"),
        ("taken / allowed", f"{wall / allowed:.3f}"),
        ("first to last arrival at the server", f"{max(arrivals) - min(arrivals):.1f} s"),
        ("requests the server saw", f"{len(arrivals):,}"),
        ("429s answered by the server", str(rejected)),
        ("retries made by the clients", str(totals["retries"])),
        ("outcomes ok / failed", f"{totals['ok']:,} / {totals['failed']}"),
        (
            f"busiest {args.period:g} s window (sliding, closed, exact)",
            f"{busiest} starts (from {where:.1f} s); budget {args.rate_limit}",
        ),
    ]
    if args.outage:
        at, seconds = args.outage
        during = sum(at <= t < at + seconds for t in arrivals)
        before, _ = busiest_window([t for t in arrivals if t < at], args.period)
        rows += [
            ("Redis away", f"from {at:g} s for {seconds:g} s"),
            ("warnings: Redis unreachable / Redis back", f"{gone} / {back}"),
            (
                "arrivals while Redis was away",
                f"{during} ({during / seconds:.1f}/s; shared pace "
                f"{args.rate_limit / args.period:.1f}/s)",
            ),
            (f"busiest {args.period:g} s window before the outage", str(before)),
            (
                f"busiest {args.period:g} s window spanning the loss",
                str(spanning(arrivals, args.period, at)),
            ),
            (
                f"busiest {args.period:g} s window spanning the return",
                str(spanning(arrivals, args.period, at + seconds)),
            ),
        ]
    if args.flushall is not None:
        rows += [
            ("Redis wiped (FLUSHALL)", f"at {args.flushall:g} s"),
            ("warnings: budget wiped", str(wiped)),
            (
                f"busiest {args.period:g} s window spanning the wipe",
                str(spanning(arrivals, args.period, args.flushall)),
            ),
        ]
    say("| measure | value |")
    say("| --- | ---: |")
    for name, value in rows:
        say(f"| {name} | {value} |")
    say()
    return lines


def spanning(arrivals: Sequence[float], period: float, moment: float) -> int:
    """The most arrivals in a closed window of ``period`` s that holds ``moment``."""
    times = sorted(arrivals)
    candidates = [t for t in times if moment - period <= t <= moment]
    return max(
        (sum(1 for t in times if begin <= t <= begin + period) for begin in candidates),
        default=0,
    )


def parse_outage(text: str) -> tuple[float, float] | str:
    if text == "auto":
        return text
    at, _, seconds = text.partition(",")
    return float(at), float(seconds)


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        worker(argv[1:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--rate-limit", type=int, default=2000)
    parser.add_argument("--period", type=float, default=60.0, help="the limiter's window, s")
    events = parser.add_mutually_exclusive_group()
    events.add_argument(
        "--outage",
        type=parse_outage,
        nargs="?",
        const="auto",
        metavar="AT,SECONDS",
        help="kill Redis AT s in, restart it SECONDS later (alone: a third of the way in, "
        "for one period)",
    )
    events.add_argument("--flushall", type=float, metavar="AT", help="wipe Redis AT s in")
    parser.add_argument(
        "--fallback", type=int, help="each worker's fallback_rate_limit (default: its share)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    args = parser.parse_args(argv)
    if args.outage == "auto":
        args.outage = (args.ids / args.rate_limit * args.period / 3, args.period)
    lines = run(args)
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
