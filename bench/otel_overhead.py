"""CPU per cancel with OpenTelemetry absent, with the API's no-op providers, and with the SDK.

Each measurement runs in a fresh process (``--mode``), so "absent" really is: the
SDK's import of ``opentelemetry`` fails there, as on a machine without the extra.
Rounds interleave the three modes (so a busy neighbour slows all of them alike); the
table shows the median CPU time per call and its ratio to "absent".

    python bench/otel_overhead.py                   # 7 rounds of 3000 cancels
    python bench/otel_overhead.py --rounds 5 --calls 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Final

MODES: Final = ("none", "noop", "sdk")
LABELS: Final = {
    "none": "opentelemetry not imported",
    "noop": "API, no-op provider",
    "sdk": "SDK provider, in-memory exporters",
}


def measure(mode: str, calls: int) -> float:
    """Seconds of CPU per ``cancel`` against the in-process fake, in this process."""
    if mode == "none":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    elif mode == "sdk":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

    import anyio

    from mailpartner_async.testing import FakeMailPartner

    async def run() -> float:
        fake = FakeMailPartner(schedule_unknown=True)
        async with fake.async_client() as client:
            for message_id in range(200):  # warm-up: imports, first-use paths
                await client.cancel(message_id)
            started = time.process_time()
            for message_id in range(1000, 1000 + calls):
                await client.cancel(message_id)
            return (time.process_time() - started) / calls

    return anyio.run(run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args.calls)))
        return 0

    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_number in range(args.rounds):
        # Rotate the order too: no mode always runs first in a round.
        order = MODES[round_number % 3 :] + MODES[: round_number % 3]
        for mode in order:
            done = subprocess.run(  # noqa: S603 - this script, this interpreter
                [sys.executable, __file__, "--mode", mode, "--calls", str(args.calls)],
                capture_output=True,
                text=True,
                check=True,
            )
            samples[mode].append(json.loads(done.stdout))

    base = statistics.median(samples["none"])
    print(f"CPU per cancel, in-process fake, {args.calls} calls, median of {args.rounds} rounds")
    print(f"| {'mode':<34} | {'µs/call':>8} | {'vs absent':>9} |")
    print(f"| {'-' * 34} | {'-' * 8} | {'-' * 9} |")
    for mode in MODES:
        median = statistics.median(samples[mode])
        print(f"| {LABELS[mode]:<34} | {median * 1e6:8.1f} | {median / base:8.3f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
