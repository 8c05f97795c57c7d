"""No module of the package reads another module's private attributes, and the lower
layers never import the facades: checked on the source's syntax trees.

A read ``obj._name`` on anything but ``self`` or ``cls`` must name an attribute the
same module defines (assigns on ``self``/``cls``, or declares in a class body);
anything else reaches into another module's object.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

import mailpartner_async

PACKAGE: Final = Path(mailpartner_async.__file__).parent
# Underscored by the namedtuple API, public all the same.
_PUBLIC_UNDERSCORED: Final = frozenset({"_asdict", "_fields", "_make", "_replace"})
# Reach-ins the other parts of issue 19 remove (the transports', the client's, the
# body decoder's type of zlib); a new one, anywhere, fails the test.
KNOWN_ELSEWHERE: Final[frozenset[str]] = frozenset()
# The fields of RedisRateLimiter the pacers and the scripts used to read; the
# limiter now hands them a RedisPlan.
LIMITER_PRIVATES: Final = ("_keys", "_reserve_args", "_fallback_per_minute", "_limiter")
LOWER_LAYERS: Final = ("_core", "_compat", "_async", "_sync")
FACADES: Final = ("mailpartner_async.redis", "mailpartner_async.testing", "mailpartner_async.cli")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _own_attributes(tree: ast.Module) -> set[str]:
    """What a module defines for its own objects: ``self.x = ...`` and class bodies."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                own.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    own.add(item.name)
                elif isinstance(item, ast.AnnAssign | ast.Assign):
                    targets = [item.target] if isinstance(item, ast.AnnAssign) else item.targets
                    own.update(target.id for target in targets if isinstance(target, ast.Name))
    return own


def _private_reads(tree: ast.Module) -> Iterator[ast.Attribute]:
    """Each ``obj._name`` whose ``obj`` is not ``self`` or ``cls``."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.endswith("__")
            and node.attr not in _PUBLIC_UNDERSCORED
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            yield node


def test_no_module_reads_a_private_attribute_another_module_defines() -> None:
    found = set()
    for path in _modules():
        tree = _tree(path)
        own = _own_attributes(tree)
        found |= {
            f"{_name(path)}: {ast.unparse(node)}"
            for node in _private_reads(tree)
            if node.attr not in own
        }

    assert sorted(found - KNOWN_ELSEWHERE) == []


@pytest.mark.parametrize("attribute", LIMITER_PRIVATES)
def test_nothing_outside_the_redis_facade_touches_the_limiters_old_private_fields(
    attribute: str,
) -> None:
    touching = [
        f"{_name(path)}:{node.lineno}"
        for path in _modules()
        if _name(path) != "redis.py"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Attribute) and node.attr == attribute
    ]

    assert touching == []


def test_only_the_redis_facade_reads_the_limiters_plan_and_on_itself() -> None:
    readers = [
        f"{_name(path)}:{node.lineno}: {ast.unparse(node)}"
        for path in _modules()
        for node in _private_reads(_tree(path))
        if node.attr == "_plan"
    ]

    assert readers == []


def _imported(path: Path) -> Iterator[tuple[str, int]]:
    """Each module ``path`` imports (``TYPE_CHECKING`` and late imports included)."""
    package = ["mailpartner_async", *Path(_name(path)).parent.parts]
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module, node.lineno
            yield from ((f"{module}.{alias.name}", node.lineno) for alias in node.names)


@pytest.mark.parametrize("layer", LOWER_LAYERS)
def test_the_lower_layers_never_import_a_facade(layer: str) -> None:
    paths = sorted((PACKAGE / layer).rglob("*.py")) or [PACKAGE / f"{layer}.py"]
    imports = [
        f"{_name(path)}:{line}: {module}"
        for path in paths
        for module, line in _imported(path)
        if any(module == facade or module.startswith(facade + ".") for facade in FACADES)
    ]

    assert imports == []
