"""Each extra holds what its feature imports, and only that.

The requirements are read from the installed metadata of mailpartner-async (its
``Requires-Dist`` lines, base and per extra); the imports from the package's own
modules, parsed with ``ast`` (imports inside functions and under ``TYPE_CHECKING``
included). Each imported module is traced to the installed distribution whose files
hold it, so a namespace package (``opentelemetry``) is told apart by its parts.

- A library the package imports is a dependency of the base install or of an extra.
  An import inside ``try: ... except ImportError:`` is optional by design: the code
  works without it, so it need not be declared (the otel URL masking, which only
  matters once the user installs an instrumentation).
- Every dependency, base or extra, is imported by some module: an unused one fails.
- No extra repeats a base dependency.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from functools import cache
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Final

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

import mailpartner_async

DISTRIBUTION: Final = canonicalize_name("mailpartner-async")
PACKAGE: Final = Path(mailpartner_async.__file__).resolve().parent
# Imported, and rightly a dependency of nobody: the caller chooses it, the SDK follows.
CALLERS_OWN: Final = {
    canonicalize_name("trio"): "the event loop the caller runs; imported only under it",
}
EXTENSION_SUFFIXES: Final = frozenset({".py", ".so", ".pyd"})


@dataclasses.dataclass(frozen=True)
class Import:
    """One module named by an import statement of the package."""

    module: str  # dotted; ``a.b`` for ``from a import b``, b a submodule or not
    where: str  # the importing file and line, for the failure message
    optional: bool  # inside ``try: ... except ImportError:``


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, where: str) -> None:
        self.where = where
        self.imports: list[Import] = []
        self._optional = 0  # depth of try blocks that catch ImportError

    def visit_Try(self, node: ast.Try) -> None:
        self._visit_try(node.body, node.handlers, [*node.orelse, *node.finalbody])

    def visit_TryStar(self, node: ast.TryStar) -> None:
        self._visit_try(node.body, node.handlers, [*node.orelse, *node.finalbody])

    def _visit_try(
        self, body: list[ast.stmt], handlers: list[ast.ExceptHandler], rest: list[ast.stmt]
    ) -> None:
        guarded = any(_catches_import_error(handler) for handler in handlers)
        self._optional += guarded
        for statement in body:
            self.visit(statement)
        self._optional -= guarded
        for child in [*handlers, *rest]:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or node.module is None:
            return  # relative: the package itself
        for alias in node.names:
            self._add(f"{node.module}.{alias.name}", node)

    def _add(self, module: str, node: ast.stmt) -> None:
        where = f"{self.where}:{node.lineno}"
        self.imports.append(Import(module, where, self._optional > 0))


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(
        isinstance(name, ast.Name) and name.id in {"ImportError", "ModuleNotFoundError"}
        for name in names
    )


def imports_of(source: str, where: str) -> list[Import]:
    """The imports of other distributions in ``source``: no stdlib, no package module."""
    collector = _ImportCollector(where)
    collector.visit(ast.parse(source))
    return [found for found in collector.imports if _is_third_party(found.module)]


def _is_third_party(module: str) -> bool:
    top = module.partition(".")[0]
    return top not in sys.stdlib_module_names and top not in {"__future__", PACKAGE.name}


@cache
def package_imports() -> tuple[Import, ...]:
    """Every import of another distribution in the package's modules."""
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE.parent).as_posix()
        found += imports_of(path.read_text(encoding="utf-8"), where)
    return tuple(found)


@cache
def module_owners() -> dict[str, frozenset[NormalizedName]]:
    """Each installed module's dotted name, and the distributions whose files hold it."""
    owners: dict[str, set[NormalizedName]] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name == DISTRIBUTION:
            continue
        for file in dist.files or ():
            module = _module_of(PurePosixPath(str(file)))
            if module is not None:
                owners.setdefault(module, set()).add(name)
    return {module: frozenset(names) for module, names in owners.items()}


def _module_of(path: PurePosixPath) -> str | None:
    """``a.b`` for ``a/b.py``, ``a/b/__init__.py`` or ``a/b.cpython-311-x86_64.so``."""
    if path.suffix not in EXTENSION_SUFFIXES or ".." in path.parts:
        return None
    parts = [*path.parts[:-1], path.name.partition(".")[0]]
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def owners_of(found: Import) -> frozenset[NormalizedName]:
    """The distributions that provide the module ``found`` names (empty: none).

    The longest installed prefix of its name: ``a.b.c`` may name a class ``c`` of
    ``a.b``, and a namespace package ``a`` is in no distribution of its own.
    """
    owners = module_owners()
    module = found.module
    while module:
        if module in owners:
            return owners[module]
        module = module.rpartition(".")[0]
    return frozenset()


@cache
def requirements() -> dict[str, frozenset[NormalizedName]]:
    """The distributions each extra requires, and under ``""`` the base install's."""
    extras = metadata.metadata(DISTRIBUTION).get_all("Provides-Extra") or []
    found: dict[str, set[NormalizedName]] = {"": set(), **{extra: set() for extra in extras}}
    for line in metadata.requires(DISTRIBUTION) or []:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        marker = requirement.marker
        if marker is None or marker.evaluate({"extra": ""}):
            found[""].add(name)
            continue
        for extra in extras:
            if marker.evaluate({"extra": extra}):
                found[extra].add(name)
    return {extra: frozenset(names) for extra, names in found.items()}


# --- the package ---------------------------------------------------------------


def test_every_library_the_package_imports_is_a_dependency_of_the_base_or_an_extra() -> None:
    required = [found for found in package_imports() if not found.optional]
    unknown = [f"{found.where}: {found.module}" for found in required if not owners_of(found)]
    assert unknown == [], f"imported, and provided by no installed distribution: {unknown}"
    allowed = frozenset().union(*requirements().values(), CALLERS_OWN)
    missing = sorted(
        f"{found.where}: {found.module} ({', '.join(sorted(owners))})"
        for found in required
        if not (owners := owners_of(found)) & allowed
    )
    assert missing == [], f"imported, and neither a base nor an extra dependency: {missing}"


@pytest.mark.parametrize("extra", sorted(requirements()), ids=lambda extra: extra or "base")
def test_every_dependency_of_the_extra_is_imported_by_the_package(extra: str) -> None:
    imported = frozenset().union(*(owners_of(found) for found in package_imports()))
    unused = sorted(requirements()[extra] - imported)
    assert unused == [], f"{extra or 'the base install'} requires what no module imports: {unused}"


def test_no_extra_repeats_a_base_dependency() -> None:
    base = requirements()[""]
    repeated = {extra: sorted(names & base) for extra, names in requirements().items() if extra}
    assert {extra: names for extra, names in repeated.items() if names} == {}


def test_the_metadata_declares_the_licence_and_where_the_project_lives() -> None:
    meta = metadata.metadata(DISTRIBUTION)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL") or [])
    assert sorted(urls) == ["Changelog", "Documentation", "Issues", "Source"]
    assert all(url.startswith("https://github.com/mailpartner-async/") for url in urls.values())


# --- the collector itself --------------------------------------------------------

COLLECTED: Final = [
    ("import httpx", [("httpx", False)]),
    ("import redis.asyncio as r", [("redis.asyncio", False)]),
    ("from redis.backoff import NoBackoff", [("redis.backoff.NoBackoff", False)]),
    ("def f():\n    import aiohttp", [("aiohttp", False)]),
    ("try:\n    import uvicorn\nexcept ImportError:\n    pass", [("uvicorn", True)]),
    (
        "try:\n    import uvicorn\nexcept (OSError, ModuleNotFoundError):\n    pass",
        [("uvicorn", True)],
    ),
    ("try:\n    import uvicorn\nexcept RuntimeError:\n    pass", [("uvicorn", False)]),
    (
        "try:\n    pass\nexcept ImportError:\n    import trio",
        [("trio", False)],  # the handler's own imports are not guarded
    ),
    ("import os, json\nfrom typing import Any\nfrom __future__ import annotations", []),
    ("from . import _models\nfrom .._core.settings import Settings", []),
    ("import mailpartner_async.testing", []),
]


@pytest.mark.parametrize(("source", "expected"), COLLECTED)
def test_collector_finds_third_party_imports_and_which_are_optional(
    source: str, expected: list[tuple[str, bool]]
) -> None:
    found = imports_of(source, "module.py")
    assert [(each.module, each.optional) for each in found] == expected


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("httpx/__init__.py", "httpx"),
        ("opentelemetry/util/http/__init__.py", "opentelemetry.util.http"),
        (
            "pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so",
            "pydantic_core._pydantic_core",
        ),
        ("yarl/_url.py", "yarl._url"),
        ("../../bin/uvicorn", None),
        ("httpx-0.28.1.dist-info/RECORD", None),
        ("typing_extensions.py", "typing_extensions"),
    ],
)
def test_installed_files_name_their_modules(path: str, module: str | None) -> None:
    assert _module_of(PurePosixPath(path)) == module
