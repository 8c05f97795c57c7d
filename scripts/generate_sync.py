"""Generate the sync client (and its tests) from the async source.

An explicit list of substitutions, applied in order, turns each async module into
its sync twin, which ruff then formats. Where the two sides differ, the async source
says so inline, as psycopg's does: the block of an ``if True:  # ASYNC`` is the async
side's, and its ``else:`` block, if any, the sync side's. ``--check`` regenerates in
memory and fails when a generated file differs from what is on disk, or when a rule
no longer matches anything (a dead rule hides drift).

    python scripts/generate_sync.py           # write the sync files
    python scripts/generate_sync.py --check   # fail on drift or dead rules
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Rule:
    pattern: str
    replacement: str | Callable[[re.Match[str]], str]

    def apply(self, text: str) -> tuple[str, int]:
        return re.subn(self.pattern, self.replacement, text, flags=re.MULTILINE)


def _sync_branch(match: re.Match[str]) -> str:
    return textwrap.indent(textwrap.dedent(match["sync"] or ""), match["indent"])


# psycopg's inline divergence: the block of an ``if True:  # ASYNC`` is the async
# side's; its ``else:`` block, if any, is the sync side's, put in the if's place.
SYNC_BRANCH = Rule(
    r"^(?P<indent>[ ]*)if True:  # ASYNC\n(?:(?P=indent)[ ]{4}.*\n|[ ]*\n)*?"
    r"(?:(?P=indent)else:\n(?P<sync>(?:(?P=indent)[ ]{4}.*\n|[ ]*\n)*?))?"
    r"(?!(?P=indent)[ ]{4}|[ ]*\n)",
    _sync_branch,
)


# Rules shared by the package and the tests, most specific first. They rename
# identifiers and drop the async keywords, nothing else: the async source is written
# so that its docstrings read right after renaming.
COMMON_RULES = [
    Rule(r"\bAsyncMailPartner\b", "MailPartner"),
    Rule(r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    Rule(r"\bhttpx\.AsyncBaseTransport\b", "httpx.BaseTransport"),
    Rule(r"\bhttpx2\.AsyncClient\b", "httpx2.Client"),
    Rule(r"\bhttpx2\.AsyncBaseTransport\b", "httpx2.BaseTransport"),
    Rule(r"\basync def\b", "def"),
    Rule(r"\basync with\b", "with"),
    Rule(r"\basync for\b", "for"),
    Rule(r"\bawait ", ""),
    Rule(r"\baclose\b", "close"),
    Rule(r"__aenter__", "__enter__"),
    Rule(r"__aexit__", "__exit__"),
    Rule(r"\bAsyncBatch\b", "Batch"),
]

PACKAGE_RULES = [
    SYNC_BRANCH,
    Rule(r"Iterable\[BatchItem\] \| AsyncIterable\[BatchItem\]", "Iterable[BatchItem]"),
    Rule(r"\(Iterable, AsyncIterable\)", "(Iterable,)"),
    Rule(r"Awaitable\[CancelResult\]", "CancelResult"),
    Rule(r"\bAsyncCancelScope\b", "CancelScope"),
    Rule(r"\bAsyncEvent\b", "Event"),
    Rule(r"\bAsyncTaskGroup\b", "TaskGroup"),
    Rule(r"\bAsyncStop\b", "Stop"),
    Rule(
        r"\basync_(checkpoint|iterate|join|loop_token|move_on_after|run_sync|spawn|thread_lock"
        r"|wait_for)\b",
        r"\1",
    ),
    Rule(r"\b_AsyncPool\b", "_Pool"),
    Rule(r"\b_AsyncRun\b", "_Run"),
    Rule(r"\b_AsyncSource\b", "_Source"),
    Rule(r"\bAsyncChannel\b", "Channel"),
    Rule(r"\b_async\.(\w+)\b", r"_sync.\1"),
    Rule(r"\bASYNC_ID_SOURCES\b", "ID_SOURCES"),
    Rule(r"\bAsyncLimiter\b", "Limiter"),
    Rule(r"\bAsyncLock\b", "Lock"),
    Rule(r"\bAsyncLoopGuard\b", "LoopGuard"),
    Rule(r"\bAsyncPacer\b", "Pacer"),
    Rule(r"\bAsyncPacing\b", "Pacing"),
    Rule(r"\.async_pacer\(\)", ".pacer()"),
    Rule(r"\bAsyncHttpxTransport\b", "HttpxTransport"),
    Rule(r"\bAsyncHttpx2Transport\b", "Httpx2Transport"),
    Rule(r"\bAsyncTransport\b", "Transport"),
    Rule(r"\bAsyncAttemptTransport\b", "AttemptTransport"),
    Rule(r"\bAsyncAttempt\b", "Attempt"),
    Rule(r"\b_AsyncAttempt(Backend|Stream)\b", r"_Attempt\1"),
    Rule(r"\b_AsyncBody\b", "_Body"),
    Rule(r"\b(httpcore2?)\.Async(ConnectionPool|HTTPProxy|SOCKSProxy|Network\w+)\b", r"\1.\2"),
    Rule(r"\b(httpcore2?)\.AnyIOBackend\b", r"\1.SyncBackend"),
    Rule(r"\b(httpx2?)\.AsyncByteStream\b", r"\1.SyncByteStream"),
    Rule(r"\bhandle_async_request\b", "handle_request"),
    Rule(r"\bAsyncIterator, Iterator\b", "Iterator"),
    Rule(r"\bAsyncIterator\b", "Iterator"),
    Rule(r"\bAsyncCancelCall\b", "CancelCall"),
    Rule(r"\bnew_async_client\b", "new_client"),
    Rule(r"\bopen_async_transport\b", "open_transport"),
    Rule(r"\basync_sleep\b", "sleep"),
    Rule(r"\bAsyncIds\b", "Ids"),
    Rule(r"\bStopAsyncIteration\b", "StopIteration"),
    Rule(r"\b__aiter__\b", "__iter__"),
    Rule(r"\b__anext__\b", "__next__"),
    Rule(r"\banext\b", "next"),
    Rule(r"\baiter_raw\b", "iter_raw"),
    Rule(r"\bAsyncRedisPacer\b", "RedisPacer"),
    Rule(r"\bAsyncRedisScripts\b", "RedisScripts"),
    *COMMON_RULES,
]

# The httpx2 fork has httpx's API under other names: its modules are httpx's, renamed.
HTTPX2_RULES = [
    Rule(r"\bhttpx\b", "httpx2"),
    Rule(r"\bhttpcore\b", "httpcore2"),
    Rule(r"\bhttpx_pool\b", "httpx2_pool"),
    Rule(r"\bAsyncHttpxTransport\b", "AsyncHttpx2Transport"),
]

TEST_RULES = [
    Rule(r"^\s*@pytest\.mark\.anyio\n", ""),
    Rule(r"\bASYNC_TRANSPORTS\b", "TRANSPORTS"),
    *COMMON_RULES,
]


@dataclasses.dataclass(frozen=True)
class Target:
    source: str
    destination: str
    rules: tuple[Rule, ...]


TARGETS = [
    Target(
        "mailpartner_async/_async/__init__.py",
        "mailpartner_async/_sync/__init__.py",
        tuple(PACKAGE_RULES),
    ),
    Target(
        "mailpartner_async/_async/client.py",
        "mailpartner_async/_sync/client.py",
        tuple(PACKAGE_RULES),
    ),
    *(
        Target(
            f"mailpartner_async/_async/{name}.py",
            f"mailpartner_async/_sync/{name}.py",
            tuple(PACKAGE_RULES),
        )
        for name in ("channel", "ids", "loop_guard", "pacer")
    ),
    Target(
        "mailpartner_async/_async/batch.py",
        "mailpartner_async/_sync/batch.py",
        tuple(PACKAGE_RULES),
    ),
    Target(
        "mailpartner_async/_async/redis_pacer.py",
        "mailpartner_async/_sync/redis_pacer.py",
        tuple(PACKAGE_RULES),
    ),
    *(
        Target(
            f"mailpartner_async/_async/transports/{name}.py",
            f"mailpartner_async/_sync/transports/{name}.py",
            tuple(PACKAGE_RULES),
        )
        for name in ("__init__", "environment", "http_httpx", "httpx_pool")
    ),
    # The httpx modules again for the fork, async and sync.
    *(
        Target(
            f"mailpartner_async/_async/transports/{source}.py",
            f"mailpartner_async/{side}/transports/{twin}.py",
            rules,
        )
        for source, twin in (("http_httpx", "http_httpx2"), ("httpx_pool", "httpx2_pool"))
        for side, rules in (
            ("_async", tuple(HTTPX2_RULES)),
            ("_sync", (*HTTPX2_RULES, *PACKAGE_RULES)),
        )
    ),
    Target(
        "mailpartner_async/testing/_transports.py",
        "mailpartner_async/testing/_transports_httpx2.py",
        tuple(HTTPX2_RULES),
    ),
    Target(
        "tests/_async/test_client.py",
        "tests/_sync/test_client.py",
        tuple(TEST_RULES),
    ),
]

HEADER = """\
# WARNING: this file is generated by scripts/generate_sync.py
# from {source}. DO NOT EDIT: change that source,
# then run `nox -s generate` (or `python scripts/generate_sync.py`).
"""


def convert(target: Target, text: str, used: dict[int, int]) -> str:
    """The sync twin of one async module's text, unformatted."""
    for rule in target.rules:
        text, count = rule.apply(text)
        used[id(rule)] = used.get(id(rule), 0) + count
    return HEADER.format(source=target.source) + text


def ruff_format(text: str, path: str) -> str:
    """``text`` as ``ruff format`` (with the project's settings) would write it."""
    for command in (
        ["ruff", "check", "--fix-only", "--select", "I,F401", "--quiet"],
        ["ruff", "format", "--quiet"],
    ):
        done = subprocess.run(
            [*command, "--stdin-filename", path, "-"],
            input=text,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"ruff failed on {path}:\n{done.stderr}")
        text = done.stdout
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail on drift or dead rules")
    args = parser.parse_args(argv)

    used: dict[int, int] = {}
    stale: list[str] = []
    for target in TARGETS:
        source = (ROOT / target.source).read_text()
        generated = ruff_format(convert(target, source, used), target.destination)
        destination = ROOT / target.destination
        current = destination.read_text() if destination.exists() else ""
        if generated == current:
            continue
        if args.check:
            stale.append(target.destination)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    f"{target.destination} (on disk)",
                    f"{target.destination} (generated)",
                )
            )
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(generated)
            print(f"wrote {target.destination}")

    all_rules = {id(rule): rule for target in TARGETS for rule in target.rules}
    dead = [rule for key, rule in all_rules.items() if used.get(key, 0) == 0]
    for rule in dead:
        print(f"dead rule (matches nothing): {rule.pattern!r} -> {rule.replacement!r}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `nox -s generate`")
    return 1 if stale or dead else 0


if __name__ == "__main__":
    raise SystemExit(main())
