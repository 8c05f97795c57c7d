"""Benchmark mailpartner-async on each transport against that transport's raw library.

Usage::

    python bench/run.py [--quick] [--rate-limit-check] [--plot PATH] [--markdown PATH]

Starts nginx (one worker, so one of the two cores stays with the client) on free
loopback ports with a fixed answer, at 0 ms and at 20 ms of latency, and runs every
client in its own fresh interpreter, so its CPU and peak RSS are its own. Rounds are
interleaved (round 1 of every client, then round 2, ...) so that a change in the
machine's load hits every client alike. The SDK on ``transport="httpx"``, ``"httpx2"``
and ``"aiohttp"`` is set side by side with raw ``httpx.AsyncClient``,
``httpx2.AsyncClient`` and ``aiohttp.ClientSession``, each swept over concurrency.
Prints, per latency, one row per client at its best concurrency (medians of the
rounds), the sweep, the best concurrency per transport, the RSS of ``cancel_iter``
over 10,000 and 100,000 ids, import times (and which transport libraries the import
loads), and the targets of issue 11, each met or missed. Benchmarks only print:
nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from _servers import CountingServer, Nginx, start_nginx
from _workload import missing_feature

HERE = Path(__file__).resolve().parent
LATENCIES = (0, 20)


@dataclasses.dataclass(frozen=True)
class Settings:
    levels: tuple[int, ...]  # concurrencies of the sweep
    rounds: int  # interleaved rounds; each client runs once per round
    round_seconds: float  # a round is sized from the warm-up's rate to last this long
    max_requests: int  # per round, at most
    iter_ids: int  # ids for the cancel_iter memory run
    import_runs: int


FULL = Settings((1, 2, 5, 10, 20, 50, 100), 5, 0.5, 2000, 100_000, 21)
QUICK = Settings((1, 5, 20, 100), 2, 0.25, 1000, 20_000, 3)


@dataclasses.dataclass(frozen=True)
class Client:
    kind: str
    label: str
    baseline: str | None = None  # the raw client its req/s ratio is taken against
    cpu_baseline: str | None = None  # the raw client on the same transport (same C)
    sweep: bool = False  # run at every concurrency, else at ``sibling``'s best
    sibling: str | None = None
    sequential: bool = False


# The transports, each with its raw library: (SDK transport, raw kind, label of the library).
TRANSPORTS = (
    ("httpx", "raw_httpx", "httpx.AsyncClient"),
    ("httpx2", "raw_httpx2", "httpx2.AsyncClient"),
    ("aiohttp", "raw_aiohttp", "aiohttp.ClientSession"),
)
RAW_OF = {transport: raw for transport, raw, _ in TRANSPORTS}


def _transport_clients() -> list[Client]:
    clients = []
    for transport, raw, library in TRANSPORTS:
        sweep = f"sdk_{transport}_cancel_many"
        sdk = f"AsyncMailPartner(transport={transport!r})"
        clients += [
            Client(raw, f"raw {library} + gather", sweep=True),
            Client(sweep, f"{sdk}.cancel_many", raw, raw, sweep=True),
            Client(f"sdk_{transport}_gather", f"{sdk}: gather of cancel", raw, raw,
                   sibling=sweep),
            Client(f"sdk_{transport}_cancel_iter", f"{sdk}.cancel_iter", raw, raw,
                   sibling=sweep),
        ]  # fmt: skip
    return clients


CLIENTS = (
    Client("requests_seq", "provider sample: requests.get, sequential", sequential=True),
    *_transport_clients(),
    Client("sync_cancel_many", "MailPartner.cancel_many (httpx, threads)", "raw_httpx",
           sibling="sdk_httpx_cancel_many"),
)  # fmt: skip
BY_KIND = {client.kind: client for client in CLIENTS}


@dataclasses.dataclass(frozen=True)
class Level:
    """One client at one concurrency: medians over the rounds."""

    concurrency: int
    rps: float
    cpu_ms: float
    cpu_wait_pct: float  # of wall time, the client's threads waited for a CPU
    server_cpu_ms: float
    peak_rss_mb: float
    failures: int
    rounds: int
    requests: int  # per round (median)


Results = dict[int, dict[str, dict[int, Level]]]  # latency -> kind -> concurrency -> level


# --- running clients ---------------------------------------------------------------------


def run_workload(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``_workload.py`` with ``spec`` in a fresh interpreter; its JSON answer."""
    completed = subprocess.run(  # noqa: S603 (this interpreter, our own script)
        [sys.executable, str(HERE / "_workload.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{spec['kind']} failed:\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout))


def run_phase(
    plan: Mapping[int, Mapping[str, Sequence[int]]], nginx: Nginx, settings: Settings
) -> Results:
    """Run each planned client at its concurrencies, rounds interleaved across clients."""
    samples: dict[tuple[int, str, int], list[tuple[dict[str, Any], float]]]
    samples = collections.defaultdict(list)
    for round_number in range(1, settings.rounds + 1):
        for latency, clients in plan.items():
            for kind, levels in clients.items():
                started = time.perf_counter()
                answer = run_workload(
                    {
                        "kind": kind,
                        "base_url": nginx.base_url(latency),
                        "concurrencies": list(levels),
                        "rounds": 1,
                        "round_seconds": settings.round_seconds,
                        "max_n": settings.max_requests,
                        "server_pid": nginx.worker_pid,
                    }
                )
                for level in answer["levels"]:
                    key = (latency, kind, level["concurrency"])
                    samples[key] += [(r, level["peak_rss_mb"]) for r in level["rounds"]]
                print(
                    f"  round {round_number}/{settings.rounds}  {latency:>2} ms  {kind:<24} "
                    f"{time.perf_counter() - started:5.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    results: Results = {latency: {} for latency in plan}
    for (latency, kind, concurrency), pairs in samples.items():
        rounds = [r for r, _ in pairs]
        results[latency].setdefault(kind, {})[concurrency] = Level(
            concurrency=concurrency,
            rps=statistics.median(r["n"] / r["wall"] for r in rounds),
            cpu_ms=statistics.median(1000 * r["cpu"] / r["n"] for r in rounds),
            cpu_wait_pct=statistics.median(100 * r["cpu_wait"] / r["wall"] for r in rounds),
            server_cpu_ms=statistics.median(1000 * r["server_cpu"] / r["n"] for r in rounds),
            peak_rss_mb=statistics.median(rss for _, rss in pairs),
            failures=sum(r["failures"] for r in rounds),
            rounds=len(rounds),
            requests=int(statistics.median(r["n"] for r in rounds)),
        )
    return results


def best(levels: dict[int, Level]) -> Level:
    return max(levels.values(), key=lambda level: level.rps)


def run_clients(nginx: Nginx, settings: Settings) -> tuple[Results, dict[str, str]]:
    """Sweep and sequential clients first, then the rest at their sibling's best C."""
    skipped = {c.kind: why for c in CLIENTS if (why := missing_feature(c.kind)) is not None}
    runnable = [c for c in CLIENTS if c.kind not in skipped]
    first = {
        latency: {c.kind: [1] if c.sequential else settings.levels for c in runnable
                  if c.sweep or c.sequential}
        for latency in LATENCIES
    }  # fmt: skip
    results = run_phase(first, nginx, settings)

    def sibling_best(latency: int, client: Client) -> list[int]:
        sibling = results[latency].get(client.sibling or "")
        return [best(sibling).concurrency] if sibling else [10]

    second = {
        latency: {c.kind: sibling_best(latency, c) for c in runnable
                  if not (c.sweep or c.sequential)}
        for latency in LATENCIES
    }  # fmt: skip
    for latency, found in run_phase(second, nginx, settings).items():
        results[latency].update(found)
    return results, skipped


# --- the report ------------------------------------------------------------------------------


class Report:
    """Collects lines for stdout and, when asked, a Markdown file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self("| " + " | ".join(header) + " |")
        self("| " + " | ".join("---" if i == 0 else "---:" for i in range(len(header))) + " |")
        for row in rows:
            self("| " + " | ".join(row) + " |")
        self()


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "-"
    return f"{value / reference:.2f}x"


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    packages = (
        "mailpartner-async",
        "httpx",
        "httpcore",
        "anyio",
        "pydantic",
        "httpx2",
        "httpcore2",
        "aiohttp",
        "requests",
    )
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "packages": ", ".join(f"{name} {version(name)}" for name in packages),
    }


def load_average() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def print_main_table(results: Results, skipped: dict[str, str], report: Report) -> None:
    header = [
        "client",
        "C",
        "req/s",
        "vs raw, each at its best",
        "CPU ms/req",
        "CPU vs raw, same C",
        "waited for CPU",
        "nginx CPU ms/req",
        "peak RSS MB",
        "failed",
        "rounds x req",
    ]
    for latency in LATENCIES:
        found = results[latency]
        rows = []
        for client in CLIENTS:
            if client.kind in skipped:
                rows.append([client.label, "-", "skipped: " + skipped[client.kind]] + ["-"] * 8)
                continue
            level = best(found[client.kind])
            baseline = found.get(client.baseline or "")
            raw_same_c = found.get(client.cpu_baseline or "", {}).get(level.concurrency)
            rows.append(
                [
                    client.label,
                    str(level.concurrency),
                    f"{level.rps:,.0f}",
                    f"{ratio(level.rps, best(baseline).rps)} {client.baseline}"
                    if baseline
                    else "-",
                    f"{level.cpu_ms:.3f}",
                    ratio(level.cpu_ms, raw_same_c.cpu_ms if raw_same_c else None),
                    f"{level.cpu_wait_pct:.0f} %",
                    f"{level.server_cpu_ms:.3f}",
                    f"{level.peak_rss_mb:.1f}",
                    str(level.failures),
                    f"{level.rounds} x {level.requests}",
                ]
            )
        report(f"### Server latency {latency} ms (each client at its best concurrency C)")
        report()
        report.table(header, rows)


def print_sweep(results: Results, settings: Settings, report: Report) -> None:
    report("### Throughput against concurrency: req/s (client CPU ms per request)")
    report()
    for latency in LATENCIES:
        rows = []
        for client in CLIENTS:
            levels = results[latency].get(client.kind)
            if client.sweep and levels:
                rows.append(
                    [client.kind]
                    + [f"{levels[c].rps:,.0f} ({levels[c].cpu_ms:.2f})" for c in settings.levels]
                )
        report(f"{latency} ms server:")
        report()
        report.table(["client", *(f"C={c}" for c in settings.levels)], rows)


def run_iter_rss(settings: Settings, report: Report) -> dict[str, Any]:
    answer = run_workload({"kind": "iter_rss", "base_url": "", "n": settings.iter_ids})
    report(
        f"### cancel_iter memory: {answer['seen']:,} ids from a generator, default "
        f"max_concurrency, {answer['wall']:.0f} s, {answer['failures']} failed"
    )
    report()
    report(
        "Answers from an in-process `httpx.MockTransport`, so the run measures the batch "
        "machinery at thousands of ids a second (sockets would take minutes; each "
        "client's peak RSS over real sockets is in the tables above)."
    )
    report()
    rows = [["after import, before the loop", f"{answer['rss_before_mb']:.1f}"]]
    rows += [
        [f"after {int(seen):,} outcomes", f"{rss:.1f}"]
        for seen, rss in answer["peak_rss_mb"].items()
    ]
    report.table(["peak RSS (VmHWM)", "MB"], rows)
    return answer


def _import_env() -> dict[str, str]:
    """The environment of the import timings: bytecode written and read, as after a
    ``pip install`` (which compiles it). With ``PYTHONDONTWRITEBYTECODE`` set, as on
    some CI machines, every import would compile every module from source, and the
    timing would measure the compiler."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _import_ms(statement: str) -> float:
    code = (
        "import time; started = time.perf_counter(); "
        f"{statement}; print((time.perf_counter() - started) * 1000)"
    )
    return float(
        subprocess.run(  # noqa: S603 (this interpreter, a fixed statement)
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=_import_env(),
        ).stdout
    )


def _importtime(statement: str) -> dict[str, int]:
    """Self time in microseconds of each module ``statement`` imports (``-X importtime``)."""
    stderr = subprocess.run(  # noqa: S603 (this interpreter, a fixed statement)
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        env=_import_env(),
    ).stderr
    modules = {}
    for line in stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line.removeprefix("import time:").split("|")
            modules[name.strip()] = int(own)
    return modules


BASE_IMPORT = "import httpx, anyio; from pydantic import BaseModel"
SDK_IMPORT = "import mailpartner_async"
# Libraries of the transports a user may not use: the import must not load them.
OPTIONAL_LIBRARIES = ("aiohttp", "httpx2", "httpcore2")


@dataclasses.dataclass(frozen=True)
class Imports:
    base_ms: float
    sdk_ms: float
    loaded_optional: tuple[str, ...]  # of OPTIONAL_LIBRARIES, those the import loaded

    @property
    def extra_ms(self) -> float:
        return self.sdk_ms - self.base_ms


def _loaded_top_level(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(  # noqa: S603 (this interpreter, a fixed statement)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in out.split()}


def run_imports(settings: Settings, report: Report) -> Imports:
    timings: dict[str, list[float]] = {BASE_IMPORT: [], SDK_IMPORT: []}
    for statement in timings:  # a first run writes the bytecode the timed ones read
        _import_ms(statement)
    differences = []
    for _ in range(settings.import_runs):  # alternate, so load changes hit both alike
        for statement, samples in timings.items():
            samples.append(_import_ms(statement))
        differences.append(timings[SDK_IMPORT][-1] - timings[BASE_IMPORT][-1])
    base = statistics.median(timings[BASE_IMPORT])
    # The median of the pairs' differences: a burst of load on the shared box moves
    # both halves of a pair, and a few such pairs do not move the median.
    extra_ms = statistics.median(differences)
    loaded = _loaded_top_level(SDK_IMPORT)
    optional = tuple(name for name in OPTIONAL_LIBRARIES if name in loaded)
    report(f"### Import time (fresh interpreters, median of {settings.import_runs})")
    report()
    report.table(
        ["statement", "median ms", "min ms"],
        [[f"`{s}`", f"{statistics.median(t):.1f}", f"{min(t):.1f}"] for s, t in timings.items()]
        + [
            [
                "difference (median of the paired runs; of the minimums)",
                f"{extra_ms:+.1f}",
                f"{min(timings[SDK_IMPORT]) - min(timings[BASE_IMPORT]):+.1f}",
            ]
        ],
    )
    report.table(
        ["transports you don't use are not imported", "loaded by `import mailpartner_async`"],
        [[f"`{name}`", "**yes**" if name in loaded else "no"] for name in OPTIONAL_LIBRARIES],
    )
    # What the SDK imports beyond the baseline, by top-level package (one -X importtime run).
    baseline = _importtime(BASE_IMPORT)
    extra: collections.Counter[str] = collections.Counter()
    for name, own in _importtime(SDK_IMPORT).items():
        if name not in baseline:
            extra[name.split(".")[0]] += own
    rows = [[name, f"{us / 1000:.1f}"] for name, us in extra.most_common(8)]
    rows.append(["total beyond the baseline", f"{sum(extra.values()) / 1000:.1f}"])
    report("Modules `import mailpartner_async` loads beyond the baseline (`-X importtime`):")
    report()
    report.table(["package", "self ms"], rows)
    return Imports(base, base + extra_ms, optional)


def run_rate_limit_check(report: Report, ids: int = 10_000, per_minute: int = 2000) -> None:
    allowed = ids / per_minute * 60
    print(f"rate-limit check: {ids} ids at {per_minute}/min, about {allowed:.0f} s", flush=True)
    with CountingServer(per_minute) as server:
        answer = run_workload(
            {"kind": "rate_check", "base_url": server.base_url(), "n": ids, "rate": per_minute}
        )
        rejected, max_in_window = server.rejected, server.max_in_window
    report(f"### Rate-limit check: {ids:,} ids, rate_limit={per_minute}")
    report()
    report(
        f"Server: answers code 429 (status and body) once it has accepted {per_minute} "
        "requests in the last 60 s (a sliding window, the strictest reading of the cap)."
    )
    report()
    report.table(
        ["method", "seconds", "vs allowed", "429s at server", "max in 60 s", "outcomes", "failed"],
        [
            [
                answer["method"],
                f"{answer['wall']:.1f}",
                f"{answer['wall'] / allowed:.3f}x of {allowed:.0f} s",
                str(rejected),
                str(max_in_window),
                f"{answer['outcomes']:,}",
                str(answer["failures"]),
            ]
        ],
    )


def print_side_by_side(results: Results, report: Report) -> None:
    """Each transport against its own raw library, both at their best concurrency."""
    rows = []
    for latency in LATENCIES:
        found = results[latency]
        for transport, raw, library in TRANSPORTS:
            sdk_levels, raw_levels = found.get(f"sdk_{transport}_cancel_many"), found.get(raw)
            if not sdk_levels or not raw_levels:
                rows.append([f"{latency} ms", transport, library, "skipped"] + ["-"] * 6)
                continue
            sdk, raw_best = best(sdk_levels), best(raw_levels)
            raw_same_c = raw_levels.get(sdk.concurrency)
            rows.append(
                [
                    f"{latency} ms",
                    f"`{transport}`",
                    f"raw `{library}`",
                    f"{raw_best.rps:,.0f} (C={raw_best.concurrency})",
                    f"{sdk.rps:,.0f} (C={sdk.concurrency})",
                    ratio(sdk.rps, raw_best.rps),
                    f"{raw_same_c.cpu_ms:.3f}" if raw_same_c else "-",
                    f"{sdk.cpu_ms:.3f}",
                    ratio(sdk.cpu_ms, raw_same_c.cpu_ms if raw_same_c else None),
                ]
            )
    report("### Each transport against its own library (cancel_many; each at its best C)")
    report()
    report.table(
        [
            "server",
            "transport",
            "raw library",
            "raw req/s (best C)",
            "SDK req/s (best C)",
            "SDK / raw",
            "raw CPU ms/req",
            "SDK CPU ms/req",
            "CPU SDK / raw, same C",
        ],
        rows,
    )


def near_best(levels: dict[int, Level], share: float = 0.9) -> int:
    """The smallest concurrency that reaches ``share`` of the best throughput."""
    top = best(levels).rps
    return min(c for c, level in levels.items() if level.rps >= share * top)


def print_concurrency(results: Results, report: Report) -> None:
    """The best concurrency of each transport (SDK cancel_many and raw library)."""
    rows = []
    for latency in (20, 0):
        for transport, raw, _ in TRANSPORTS:
            sdk_levels = results[latency].get(f"sdk_{transport}_cancel_many")
            raw_levels = results[latency].get(raw)
            if not sdk_levels or not raw_levels:
                continue
            sdk = best(sdk_levels)
            at_10 = sdk_levels.get(10)
            rows.append(
                [
                    f"{latency} ms",
                    f"`{transport}`",
                    str(sdk.concurrency),
                    f"{sdk.rps:,.0f}",
                    str(near_best(sdk_levels)),
                    f"{at_10.rps:,.0f}" if at_10 else "-",
                    str(best(raw_levels).concurrency),
                ]
            )
    report("### Best concurrency per transport (SDK cancel_many, from the sweep)")
    report()
    report.table(
        [
            "server",
            "transport",
            "best C",
            "req/s at best C",
            "smallest C with >= 90 % of best",
            "req/s at C=10",
            "raw library's best C",
        ],
        rows,
    )


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool | None  # None: not measured


def targets(results: Results, imports: Imports) -> list[Target]:
    """The targets of issue 11, each with what this run measured."""
    found: list[Target] = []

    def pair(latency: int, transport: str) -> tuple[Level, dict[int, Level]] | None:
        sdk = results[latency].get(f"sdk_{transport}_cancel_many")
        raw = results[latency].get(RAW_OF[transport])
        return (best(sdk), raw) if sdk and raw else None

    def throughput(transport: str, bound: float, latencies: Sequence[int]) -> None:
        for latency in latencies:
            name = f"`{transport}` transport >= {bound}x raw {transport}, {latency} ms"
            got = pair(latency, transport)
            if got is None:
                found.append(Target(name, "skipped", None))
                continue
            sdk, raw = got
            value = sdk.rps / best(raw).rps
            found.append(Target(name, f"{value:.2f}x", value >= bound))

    throughput("aiohttp", 0.6, [20])
    throughput("httpx2", 0.9, LATENCIES)
    throughput("httpx", 0.9, LATENCIES)
    for latency in LATENCIES:
        for transport in RAW_OF:
            name = f"CPU/call of `{transport}` <= 1.15x raw {transport}, {latency} ms"
            got = pair(latency, transport)
            raw_level = got[1].get(got[0].concurrency) if got else None
            if got is None or raw_level is None:
                found.append(Target(name, "skipped", None))
                continue
            value = got[0].cpu_ms / raw_level.cpu_ms
            found.append(Target(name, f"{value:.2f}x at C={got[0].concurrency}", value <= 1.15))
    found.append(
        Target(
            "import <= +30 ms over `import httpx, anyio; from pydantic import BaseModel`",
            f"{imports.extra_ms:+.1f} ms",
            imports.extra_ms <= 30,
        )
    )
    found.append(
        Target(
            "`import mailpartner_async` loads neither aiohttp nor httpx2",
            "loads " + ", ".join(imports.loaded_optional) if imports.loaded_optional else "none",
            not imports.loaded_optional,
        )
    )
    return found


def print_targets(
    results: Results,
    skipped: dict[str, str],
    iter_answer: dict[str, Any] | None,
    imports: Imports,
    report: Report,
) -> None:
    rows = []
    for target in targets(results, imports):
        verdict = "-" if target.met is None else "met" if target.met else "**missed**"
        rows.append([target.name, target.measured, verdict])
    if iter_answer is not None:
        checkpoints = sorted((int(k), v) for k, v in iter_answer["peak_rss_mb"].items())
        (small, small_rss), (large, large_rss) = checkpoints[-2], checkpoints[-1]
        growth = large_rss - small_rss
        rows.append(
            [
                f"cancel_iter peak RSS growth {small:,} -> {large:,} ids < 10 MB",
                f"{growth:+.1f} MB",
                "met" if growth < 10 else "**missed**",
            ]
        )
    report("### Against the targets of issue 11")
    report()
    report.table(["target", "measured", "verdict"], rows)
    for kind, reason in skipped.items():
        report(f"- skipped {kind}: {reason}")
    if skipped:
        report()


def write_plot(results: Results, settings: Settings, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(LATENCIES), figsize=(12, 4.8))
    colours = {"httpx": "tab:blue", "httpx2": "tab:green", "aiohttp": "tab:red"}
    for axis, latency in zip(axes, LATENCIES, strict=True):
        for transport, raw, library in TRANSPORTS:
            for kind, style, marker, label in (
                (raw, "-", "o", f"raw {library}"),
                (f"sdk_{transport}_cancel_many", "--", "s", f"SDK transport={transport!r}"),
            ):
                levels = results[latency].get(kind)
                if levels:
                    xs = sorted(levels)
                    axis.plot(
                        xs,
                        [levels[x].rps for x in xs],
                        linestyle=style,
                        marker=marker,
                        color=colours[transport],
                        label=label,
                    )
        levels = results[latency].get("requests_seq")
        if levels:
            axis.axhline(
                best(levels).rps, linestyle=":", color="grey", label="requests, sequential"
            )
        axis.set_xscale("log")
        axis.set_xticks(settings.levels, [str(c) for c in settings.levels])
        axis.set_yscale("log")
        axis.set_title(f"server latency {latency} ms (nginx, 1 worker, 2 cores)")
        axis.set_xlabel("requests in flight (concurrency)")
        axis.set_ylabel("requests per second (log)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot written to {path}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, levels and ids")
    parser.add_argument(
        "--rate-limit-check",
        action="store_true",
        help="also run 10,000 ids at rate_limit=2000 against a 429-ing server (5 min)",
    )
    parser.add_argument("--plot", type=Path, help="write throughput vs concurrency (PNG)")
    parser.add_argument("--markdown", type=Path, help="write the report as Markdown")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    report = Report()
    facts = machine()
    started = time.perf_counter()
    report(f"Machine: {facts['cores']} cores, {facts['cpu']}, Python {facts['python']}  ")
    report(f"Packages: {facts['packages']}  ")
    report(f"Load average at start: {load_average()}  ")
    iter_answer = None
    with start_nginx() as nginx:
        report(f"Server: {nginx.version}, 1 worker, 127.0.0.1")
        report()
        results, skipped = run_clients(nginx, settings)
        print_side_by_side(results, report)
        print_main_table(results, skipped, report)
        print_sweep(results, settings, report)
        print_concurrency(results, report)
    if "sdk_httpx_cancel_iter" not in skipped:
        iter_answer = run_iter_rss(settings, report)
    imports = run_imports(settings, report)
    if args.rate_limit_check:
        run_rate_limit_check(report)
    print_targets(results, skipped, iter_answer, imports, report)
    report(
        f"Load average at end: {load_average()}; the run took {time.perf_counter() - started:.0f} s"
    )
    if args.plot:
        write_plot(results, settings, args.plot)
    if args.markdown:
        args.markdown.write_text("\n".join(report.lines) + "\n")


if __name__ == "__main__":
    main()
