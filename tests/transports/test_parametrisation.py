"""The transports each loop's tests run on, as pytest collects them in a child process.

A plain ``pytest`` (no ``--backend``) runs the client tests and the hostile-network
matrix on every (event loop, transport) pair, aiohttp on asyncio included; one loop
alone runs its own pairs. The parametrisation is tests/support/transports.py's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASYNC_CLIENT = "tests/_async/test_client.py"
SYNC_CLIENT = "tests/_sync/test_client.py"
HOSTILE = "tests/transports/test_hostile.py"
PAIRS = {
    "asyncio": {"asyncio-httpx", "asyncio-httpx2", "asyncio-aiohttp"},
    "trio": {"trio-httpx", "trio-httpx2"},
}
_PAIR = re.compile(r"\[((?:asyncio|trio)-(?:httpx2|httpx|aiohttp))\b")
_SYNC = re.compile(r"\[(httpx2|httpx)\b")


def collected(*args: str) -> list[str]:
    """The test ids ``pytest --collect-only -q`` prints for ``args``."""
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if "::" in line]


def pairs_in(ids: list[str], path: str) -> set[str]:
    return {match.group(1) for i in ids if i.startswith(path) and (match := _PAIR.search(i))}


@pytest.mark.parametrize(
    ("options", "loops"),
    [
        ([], ["asyncio", "trio"]),
        (["--backend=asyncio"], ["asyncio"]),
        (["--backend=trio"], ["trio"]),
    ],
    ids=["plain", "asyncio", "trio"],
)
def test_each_loop_runs_the_client_tests_on_every_transport_it_has(
    options: list[str], loops: list[str]
) -> None:
    ids = collected(*options, ASYNC_CLIENT, SYNC_CLIENT, HOSTILE)
    expected = set().union(*(PAIRS[loop] for loop in loops))
    assert pairs_in(ids, ASYNC_CLIENT) == expected
    assert pairs_in(ids, HOSTILE) == expected
    sync_ids = [i for i in ids if i.startswith(SYNC_CLIENT)]
    assert {match.group(1) for i in sync_ids if (match := _SYNC.search(i))} == {"httpx", "httpx2"}
