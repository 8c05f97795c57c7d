"""A quick sweep to pick the default ``max_concurrency``: raw httpx vs AsyncMailPartner.

Usage: ``python bench/first_numbers.py [--markdown PATH]``. Superseded by ``run.py``,
which runs the same sweep among its other measurements.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _servers import start_nginx

HERE = Path(__file__).resolve().parent
CONCURRENCIES = [1, 2, 5, 10, 20, 50, 100]
ROUNDS = 3
REQUESTS = 2000


def requests_per_round(latency_ms: int, concurrency: int) -> int:
    # At 20 ms, 2,000 requests one at a time take 45 s a round; the rate is latency-bound
    # there, so fewer requests measure it as well.
    return REQUESTS if latency_ms == 0 else min(REQUESTS, 250 * concurrency)


def sweep(
    kind: str, base_url: str, latency_ms: int, server_pid: int
) -> dict[int, dict[str, float]]:
    spec = {
        "kind": kind,
        "base_url": base_url,
        "concurrencies": CONCURRENCIES,
        "n": {str(c): requests_per_round(latency_ms, c) for c in CONCURRENCIES},
        "rounds": ROUNDS,
        "server_pid": server_pid,
    }
    output = subprocess.run(  # noqa: S603 (this interpreter, our own script)
        [sys.executable, str(HERE / "_workload.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = {}
    for level in json.loads(output)["levels"]:
        rounds = level["rounds"]
        table[level["concurrency"]] = {
            "rps": statistics.median(r["n"] / r["wall"] for r in rounds),
            "cpu_ms": statistics.median(1000 * r["cpu"] / r["n"] for r in rounds),
            "server_cpu_ms": statistics.median(1000 * r["server_cpu"] / r["n"] for r in rounds),
            "failures": sum(r["failures"] for r in rounds),
            "n": rounds[0]["n"],
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    lines = [
        "| server | C | n/round | raw httpx req/s | SDK gather req/s | SDK/raw "
        "| raw CPU ms/req | SDK CPU ms/req | nginx CPU ms/req | failures |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    with start_nginx() as nginx:
        for latency in (0, 20):
            url = nginx.base_url(latency)
            raw = sweep("raw_httpx", url, latency, nginx.worker_pid)
            sdk = sweep("sdk_httpx_gather", url, latency, nginx.worker_pid)
            for c in CONCURRENCIES:
                r, s = raw[c], sdk[c]
                line = (
                    f"| {latency} ms | {c} | {r['n']} | {r['rps']:.0f} | {s['rps']:.0f} "
                    f"| {s['rps'] / r['rps']:.2f} | {r['cpu_ms']:.3f} | {s['cpu_ms']:.3f} "
                    f"| {max(r['server_cpu_ms'], s['server_cpu_ms']):.3f} "
                    f"| {r['failures'] + s['failures']} |"
                )
                lines.append(line)
                print(line, flush=True)
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
