"""No hand-written async/sync twins: a sync name is generated from its async source.

A scan of the package's hand-written modules (those without the generator's
DO-NOT-EDIT header, and not ``_compat.py``, whose paired aliases are its purpose) for
a name defined both as ``AsyncX`` or ``async_x`` and as ``X`` or ``x``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

import mailpartner_async

PACKAGE: Final = Path(mailpartner_async.__file__).parent
GENERATED: Final = "DO NOT EDIT"
# The public hooks of one object for each client (one line each, nothing that waits),
# and the two Protocols a client's pacer meets.
PAIRED_ON_PURPOSE: Final = frozenset(
    {
        ("async_pacer", "pacer"),
        ("async_client", "client"),
        ("async_transport", "transport"),
        ("AsyncPacing", "Pacing"),
    }
)
# Every other pair is generated from one source: none is allowed here.
KNOWN_ELSEWHERE: Final[frozenset[tuple[str, str]]] = frozenset()


def _hand_written() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_compat.py" and GENERATED not in path.read_text()[:400]
    ]


def _defined(paths: list[Path]) -> set[str]:
    return {
        node.name
        for path in paths
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _sync_name(name: str) -> str:
    """``name`` as the generator would rename it (``FakeAsyncTransport``: ``FakeTransport``;
    ``handle_async_request``: ``handle_request``)."""
    renamed = re.sub(r"Async(?=[A-Z])", "", name, count=1)
    return re.sub(r"(^|_)async_", r"\1", renamed, count=1)


def test_no_name_is_defined_by_hand_in_both_flavours() -> None:
    names = _defined(_hand_written())
    pairs = {(name, sync) for name in names if (sync := _sync_name(name)) != name and sync in names}

    assert sorted(pairs - PAIRED_ON_PURPOSE - KNOWN_ELSEWHERE) == []


def test_the_redis_scripts_and_the_fake_transports_are_written_once() -> None:
    by_hand = _defined(_hand_written())

    assert {"AsyncRedisScripts", "FakeAsyncTransport"} <= _defined(
        [PACKAGE / "_async" / "redis_scripts.py", PACKAGE / "_async" / "fake_transport.py"]
    )
    assert {"RedisScripts", "FakeTransport", "RedisPacer"} & by_hand == set()
