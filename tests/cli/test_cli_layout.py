"""The CLI package stays readable: each module under 300 lines, each function 50 at most."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

import mailpartner_async.cli

CLI_DIR: Final = Path(mailpartner_async.cli.__file__).parent
MODULES: Final = sorted(CLI_DIR.glob("*.py"))
MAX_MODULE_LINES: Final = 300  # a module has fewer
MAX_FUNCTION_LINES: Final = 50  # a function has this many at most


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def _length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first decorator (or the ``def``) to the last line of the body."""
    first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    assert node.end_lineno is not None
    return node.end_lineno - first + 1


def test_the_cli_package_has_its_modules() -> None:
    names = {path.stem for path in MODULES}

    assert names >= {"__init__", "__main__", "main", "parser", "inputs", "progress", "serve_fake"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_each_cli_module_is_under_300_lines(path: Path) -> None:
    lines = len(path.read_text("utf-8").splitlines())

    assert lines < MAX_MODULE_LINES, f"{path.name} has {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_cli_function_is_over_50_lines(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))

    long = {
        f"{node.name} (line {node.lineno})": _length(node)
        for node in _functions(tree)
        if _length(node) > MAX_FUNCTION_LINES
    }

    assert long == {}, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_length_counts_decorators_and_the_whole_body() -> None:
    source = "@decorated\ndef f():\n    x = 1\n\n    return x\n"
    (function,) = _functions(ast.parse(source))

    assert _length(function) == 5
