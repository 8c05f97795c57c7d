"""The fleet rescue bench: how many ids N worker processes, each leaving from its own
loopback address with its own budget, cancel in time through one AsyncRedisRescue.

A campaign of ``--ids`` emails whose sends are spread at random over ``--minutes`` is
submitted to a ``redis-server`` (no persistence); the fake (``FakeMailPartner``, served
by uvicorn from this process) caps each client address at ``--rate-limit`` a minute, as
the provider does. Everything runs ``--speed`` times faster than real time, by one
factor: the fake's clock and the rescue's ``clock=`` (one accelerated clock shared by
every process), the fake's rate window and each RedisRateLimiter's ``period`` (60 s
divided by the factor), and the lease (30 s divided by it, at least 1 s). Worker ``n``
leaves from ``127.0.0.(n + 2)`` on its own limiter key.

For 1, 2 and 4 addresses (``--addresses``), twice: as is, and with one worker killed
(SIGKILL) once half the optimum is final (with one address, a new worker takes its
place on the same address, as a supervisor would restart it). Prints, for each run:
the ids cancelled in time (the fake's state at the end), the ratio to the offline
optimum for that many budgets (``plan_rescue(..., pools=N)`` at the start), the 429s
the fake answered, and the busiest window of each address (exact, sliding, closed).

    python bench/fleet_rescue.py [--ids 100000] [--minutes 60] [--speed 20]
                                 [--addresses 1,2,4] [--no-kill] [--markdown PATH]

Benchmarks only print: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]  # bench/ and the repository

import random  # noqa: E402
from datetime import timedelta  # noqa: E402

from _servers import RedisServer  # noqa: E402
from fleet import busiest_window  # noqa: E402

from mailpartner_async import ScheduledMessage  # noqa: E402
from tests.support.rescue_worker import START  # noqa: E402

RATE_LIMIT = 2000


@dataclasses.dataclass(frozen=True)
class Row:
    addresses: int
    killed: bool
    optimum: int
    cancelled: int
    rejected: int
    busiest: tuple[int, ...]
    seconds: float


# --- the driver -------------------------------------------------------------------------


def start_worker(config: dict[str, object]) -> subprocess.Popen[str]:
    process = subprocess.Popen(  # noqa: S603 - this script, fixed arguments
        # The fleet tests' worker (tests/support/rescue_worker.py), from the repository.
        [sys.executable, "-m", "tests.support.rescue_worker", json.dumps(config)],
        cwd=HERE.parent.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        raise SystemExit(f"a worker did not start: {line!r}")
    return process


def go(process: subprocess.Popen[str], origin: float) -> None:
    assert process.stdin is not None
    process.stdin.write(f"go {origin!r}\n")
    process.stdin.flush()


def one_run(args: argparse.Namespace, redis: RedisServer, pools: int, kill: bool) -> Row:
    from mailpartner_async import plan_rescue
    from mailpartner_async.redis import RedisRescue
    from mailpartner_async.testing import FakeMailPartner
    from tests.support.fake_http import served_fake
    from tests.support.rescue_worker import SharedClock

    messages = campaign(args.ids, args.minutes, args.seed)
    optimum = plan_rescue(messages, now=START, rate_limit=args.rate_limit, pools=pools).reachable
    period = 60 / args.speed
    clock = SharedClock(time.time(), args.speed)
    fake = FakeMailPartner(clock=clock, rate_limit_per_minute=args.rate_limit, rate_window=period)
    for message in messages:
        fake.schedule(message.send_at, message.message_id)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    with served_fake(fake) as (base_url, recorder), RedisRescue(redis.url, campaign=name) as rescue:
        rescue.submit(messages)
        configs = [
            {
                "redis": redis.url,
                "campaign": name,
                "lease": max(1.0, 30 / args.speed),
                "address": f"127.0.0.{n + 2}",
                "pool": f"{name}-{n}",
                "base_url": base_url,
                "rate": args.rate_limit,
                "period": period,
                "speed": args.speed,
                "concurrency": args.concurrency,
                "transport": args.transport,
            }
            for n in range(pools)
        ]
        processes = [start_worker(config) for config in configs]
        started = time.monotonic()
        clock.origin = time.time()
        for process in processes:
            go(process, clock.origin)
        if kill:
            while rescue.status().final.done < optimum // 2:
                time.sleep(0.2)
            processes[0].send_signal(signal.SIGKILL)
            processes[0].communicate()
            if pools == 1:  # a supervisor's restart: the address keeps a worker
                processes.append(start_worker(configs[0]))
                go(processes[-1], clock.origin)
        for process in processes[1:] if kill else processes:
            _, err = process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"a worker failed:\n{err}")
        seconds = time.monotonic() - started
        answers = recorder.snapshot()
        rescue.delete()
    cancelled = sum(fake.status(m.message_id) == "cancelled" for m in messages)
    busiest = tuple(
        busiest_window([a.at for a in answers if a.address == config["address"]], period)[0]
        for config in configs
    )
    rejected = sum(a.status == 429 for a in answers)
    return Row(pools, kill, optimum, cancelled, rejected, busiest, seconds)


def campaign(count: int, minutes: float, seed: int) -> list[ScheduledMessage]:
    chance = random.Random(seed)
    return [
        ScheduledMessage(f"m-{n}", START + timedelta(seconds=chance.uniform(0, minutes * 60)))
        for n in range(count)
    ]


def table(args: argparse.Namespace, rows: Sequence[Row]) -> list[str]:
    lines = [
        f"### Fleet rescue: {args.ids:,} ids, sends spread over {args.minutes:g} min, "
        f"{args.rate_limit:,}/min per address, clock x{args.speed:g}",
        "",
        "| addresses | run | cancelled in time | optimum (offline) | of optimum | 429s "
        f"| busiest window per address (budget {args.rate_limit:,}) | real seconds |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        run = "one worker killed halfway" if row.killed else "all workers"
        busiest = ", ".join(f"{count:,}" for count in row.busiest)
        lines.append(
            f"| {row.addresses} | {run} | {row.cancelled:,} | {row.optimum:,} "
            f"| {row.cancelled / row.optimum:.1%} | {row.rejected} | {busiest} "
            f"| {row.seconds:.0f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=20.0, help="the clock's factor")
    parser.add_argument("--addresses", default="1,2,4", help="fleet sizes, comma-separated")
    parser.add_argument("--rate-limit", type=int, default=RATE_LIMIT, help="per address")
    parser.add_argument("--concurrency", type=int, default=16, help="each worker's client")
    parser.add_argument(
        "--transport", default="aiohttp", help="each worker's (httpx costs 3x the CPU here)"
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-kill", action="store_true", help="skip the runs with a kill")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    args = parser.parse_args(argv)
    rows = []
    with RedisServer() as redis:
        for pools in (int(n) for n in args.addresses.split(",")):
            for kill in (False,) if args.no_kill else (False, True):
                rows.append(one_run(args, redis, pools, kill))
                print(table(args, rows)[-1], flush=True)
    lines = table(args, rows)
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
