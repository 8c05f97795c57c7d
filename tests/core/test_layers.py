"""The shape of the package, checked by reading its source (import-linter checks the
layers themselves, in ``nox -s lint``).

- The sans-I/O core never awaits and never reads a clock: ``now`` is passed in.

(``tests/test_twins.py`` scans for hand-written async/sync twins.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mailpartner_async"
CLOCK_READS = {
    ("datetime", "now"),
    ("datetime", "today"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "time_ns"),
    ("time", "monotonic_ns"),
}


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


CORE = modules(PACKAGE / "_core")


@pytest.mark.parametrize("path", CORE, ids=lambda path: path.name)
def test_the_core_never_awaits(path: Path) -> None:
    waits = [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Await | ast.AsyncFunctionDef | ast.AsyncFor | ast.AsyncWith)
    ]
    assert waits == []


@pytest.mark.parametrize("path", CORE, ids=lambda path: path.name)
def test_the_core_reads_no_clock(path: Path) -> None:
    reads = [
        f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and (node.value.id, node.attr) in CLOCK_READS
    ]
    # A docstring example may show a clock read; code may not (docstrings are not
    # parsed as code, so any hit here is code).
    assert reads == []


def test_the_clock_check_finds_a_clock_read() -> None:
    tree = ast.parse("from datetime import datetime\nnow = datetime.now()\n")
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and (node.value.id, node.attr) in CLOCK_READS
    ]
    assert len(found) == 1
