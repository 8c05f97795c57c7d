"""Every ```python block of README.md and docs/*.md, run as a test against the fake.

The examples run unmodified, as a reader would paste them, against what a reader has:

- One fake for every page, built from the ``mailpartner serve-fake ...`` command that
  ``docs/index.md`` tells the reader to start for the examples (parsed with the CLI's
  own parser and built as ``serve-fake`` builds it), served over real HTTP with
  uvicorn on a free loopback port. Each example gets ``MAILPARTNER_API_KEY`` (the
  command's key) and ``MAILPARTNER_BASE_URL`` pointing at it; ``AsyncMailPartner()``
  reads them. Proxy variables are removed. No id is set up anywhere else: an example
  that needs a special answer (too late, already sent) uses an id that command
  schedules, and no two pages use the same id (a test checks), so a reader can run
  the pages one after another, in any order, against one long-running fake.
- A page whose examples read ``MAILPARTNER_REDIS_URL`` (the fleet rescue's) gets it
  too, pointing at a real ``redis-server`` (the session's fixture), as the page tells
  the reader to set it.
- Each page runs in a fresh working directory, which starts empty. A block with a
  file name (```python title="app.py"```) is also written there, as the reader saves
  it, and the directory is on ``sys.path`` while the page runs, so a later block can
  import it (``from app import app``).
- The blocks of one page run in order in one namespace (``__name__ == "__main__"``),
  like the cells of a notebook: a later block may use what an earlier one defined. One
  test item per block, named ``page:line``; running one item alone runs the blocks
  before it on its page first.
- A block with top-level ``await`` is compiled with ``PyCF_ALLOW_TOP_LEVEL_AWAIT``, as
  ``python -m asyncio`` does, and awaited in the page's event loop, which lives for the
  whole page in a blocking portal: trio when the page imports trio and not asyncio,
  asyncio otherwise. Other blocks run as plain scripts in the test thread, so
  ``asyncio.run(...)`` and ``trio.run(...)`` in them work as in a real script;
  ``SystemExit`` with status 0 counts as success.
- A block that defines ``test_*`` functions is a user's test file: it runs in a
  namespace of its own, as pytest imports a test module, so it must import what it
  uses. Each such function is then called with a fresh ``FakeMailPartner()`` for a
  ``mailpartner_fake`` argument (what the pytest plugin's fixture gives), and async
  ones, which must carry an ``anyio`` or ``asyncio`` mark, are awaited in the page's
  event loop.
- A line ``--8<-- "PATH"`` in a block is replaced by that file (relative to the
  repository), as the snippets extension does when mkdocs builds the page, so an
  example module shown whole in a page runs as the page shows it.
- A block whose first line is ``# not run: <reason>`` is compiled but not run, and its
  item is skipped with that reason. Other fences that look like Python (``py``,
  ``pycon``, ``python3``) are refused, so no example escapes by its spelling.
- Logging configuration an example changes is restored after it, and garbage is
  collected after each block, so a client an example forgets to close fails that
  block's test with its ``ResourceWarning``.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import gc
import inspect
import logging
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any, Final

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from mailpartner_async import APIError
from mailpartner_async.cli.parser import build_parser
from mailpartner_async.cli.serve_fake import build_fake
from mailpartner_async.testing import FakeMailPartner
from tests.support.uvicorn_thread import serve_asgi

ROOT: Final = Path(__file__).resolve().parents[2]
PAGES: Final = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
EXAMPLES_PAGE: Final = ROOT / "docs" / "index.md"  # where the reader's serve-fake is
# The ids the pages say answer specially, with the code they say.
SPECIAL_IDS: Final = {"498": 6, "499": 7, "698": 6, "699": 7, "1098": 6}
SNIPPET: Final = re.compile(r'^--8<-- "(?P<path>[^"]+)"\n', re.MULTILINE)
NOT_RUN: Final = re.compile(r"#\s*not run\b:?\s*(?P<reason>.*)")
FENCE: Final = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
TITLE: Final = re.compile(r'\btitle="(?P<title>[^"]+)"')
PYTHONISH: Final = frozenset({"py", "py3", "python3", "pycon", "ipython"})
IMPORTS_TRIO: Final = re.compile(r"^\s*(?:import|from)\s+trio\b", re.MULTILINE)
IMPORTS_ASYNCIO: Final = re.compile(r"^\s*(?:import|from)\s+asyncio\b", re.MULTILINE)
# An install of the package by its name, from PyPI, which does not have it yet.
# Any argument of the command may name it, the command broken over lines included.
# Only the Install section of docs/index.md may show it, saying it is for once the
# package is published there (INSTALL_SECTION).
_PIP_ARGUMENT: Final = r"""(?:-\S+|'[^']*'|"[^"]*"|[\w.\[\],-]+)"""
UNPUBLISHED_INSTALL: Final = re.compile(
    rf"pip install(?:\s+{_PIP_ARGUMENT})*?\s+['\"]?mailpartner[-_]async\b", re.I
)
INSTALL_SECTION: Final = re.compile(r"^## Install\n.*?(?=^## )", re.MULTILINE | re.DOTALL)
ENV_TO_CLEAR: Final = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
REDIS_URL_ENV: Final = "MAILPARTNER_REDIS_URL"  # what a page needing Redis reads
LOGGERS: Final = ("", "httpx", "httpcore", "mailpartner_async")


# --- collecting -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Block:
    """One ```python block: where it is, its code, and why it is not run (if so)."""

    page: str
    line: int  # of the opening fence, 1-based
    source: str = dataclasses.field(repr=False)
    not_run: str | None
    title: str | None = None  # the file name the page gives it

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_test_file(self) -> bool:
        """True when the block defines ``test_*`` functions: a user's test module."""
        return any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test")
            for node in ast.parse(self.source).body
        )

    def compile(self) -> CodeType:
        # Pad with blank lines so tracebacks point at the Markdown file's own lines.
        padded = "\n" * self.line + self.source
        code: CodeType = compile(
            padded,
            str(ROOT / self.page),
            "exec",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            dont_inherit=True,
        )
        return code


def python_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The ```python blocks of a Markdown file, in order; indented fences included."""
    page = path.relative_to(root).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    number = 0  # 1-based number of the line last read
    while number < len(lines):
        number += 1
        opening = FENCE.match(lines[number - 1])
        if opening is None:
            continue
        fence_line, fence, indent = number, opening["fence"], opening["indent"]
        info = opening["info"].split()
        language = info[0].lower() if info else ""
        body: list[str] = []
        while True:
            if number == len(lines):
                raise ValueError(f"{page}:{fence_line}: unclosed code fence")
            number += 1
            text = lines[number - 1].strip()
            if text.startswith(fence) and not text.strip(fence[0]):
                break
            body.append(lines[number - 1])
        if language in PYTHONISH:
            raise ValueError(
                f"{page}:{fence_line}: a ```{language} block is never run: write ```python"
            )
        if language != "python":
            continue
        if any(text.strip() and not text.startswith(indent) for text in body):
            raise ValueError(f"{page}:{fence_line}: a code line is less indented than its fence")
        source = _include_snippets(textwrap.dedent("\n".join(body)) + "\n", root)
        title = TITLE.search(opening["info"])
        not_run = _not_run_reason(page, fence_line, source)
        blocks.append(Block(page, fence_line, source, not_run, title and title["title"]))
    return blocks


def _include_snippets(source: str, root: Path) -> str:
    """``source`` with each ``--8<-- "PATH"`` line replaced by that file, as mkdocs does."""
    return SNIPPET.sub(lambda line: (root / line["path"]).read_text(encoding="utf-8"), source)


def _not_run_reason(page: str, line: int, source: str) -> str | None:
    first = next((text.strip() for text in source.splitlines() if text.strip()), "")
    marker = NOT_RUN.fullmatch(first)
    if marker is None:
        return None
    if not marker["reason"].strip():
        raise ValueError(f"{page}:{line}: say why a block is not run: `# not run: <reason>`")
    return marker["reason"].strip()


BLOCKS: Final = [block for path in PAGES for block in python_blocks(path)]


# --- the fake over HTTP -----------------------------------------------------------


def documented_fake_command(page: Path = EXAMPLES_PAGE) -> list[str]:
    """The arguments of the one ``mailpartner serve-fake`` command ``page`` shows."""
    commands: list[list[str]] = []
    lines = iter(page.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if not line.lstrip().startswith("mailpartner serve-fake"):
            continue
        text = line
        while text.rstrip().endswith("\\"):
            text = text.rstrip()[:-1] + " " + next(lines)
        commands.append(shlex.split(text, comments=True)[1:])
    assert len(commands) == 1, f"{page.name} must show one serve-fake command, not {commands}"
    return commands[0]


def documented_fake() -> FakeMailPartner:
    """The fake the reader starts with that command, built as serve-fake builds it."""
    fake: FakeMailPartner = build_fake(build_parser().parse_args(documented_fake_command()))
    return fake


@dataclasses.dataclass
class Served:
    fake: FakeMailPartner
    base_url: str


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """uvicorn serving the documented fake on a free loopback port, in a background thread."""
    fake = documented_fake()
    with serve_asgi(fake.asgi_app) as base_url:
        yield Served(fake, base_url)


# --- running a page ---------------------------------------------------------------


def page_backend(blocks: list[Block]) -> str:
    """The event loop for the page's top-level ``await``: what its code imports."""
    code = "".join(block.source for block in blocks)
    if IMPORTS_TRIO.search(code) and not IMPORTS_ASYNCIO.search(code):
        return "trio"
    return "asyncio"


async def _await(awaitable: Any) -> Any:
    return await awaitable


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Put back the levels and handlers an example changed on the loggers it uses."""
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, list(logger.handlers), logger.propagate))
    try:
        yield
    finally:
        for logger, level, handlers, propagate in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate


class PageRun:
    """One page's namespace, working directory and event loop, block after block."""

    def __init__(self, page: str, workdir: Path, redis_url: str | None = None) -> None:
        self.blocks = [block for block in BLOCKS if block.page == page]
        self.redis_url = redis_url  # the Redis its examples are given, if they need one
        self.backend = page_backend(self.blocks)
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        self.workdir = workdir
        self.ran = 0  # blocks of this page run so far
        self.used_ids: set[str] = set()  # the ids its examples sent to the served fake
        self._loop = contextlib.ExitStack()
        self._portal: BlockingPortal | None = None

    @property
    def portal(self) -> BlockingPortal:
        if self._portal is None:
            self._portal = self._loop.enter_context(start_blocking_portal(self.backend))
        return self._portal

    def close(self) -> None:
        self._loop.close()
        self._portal = None

    def run_through(self, block: Block, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
        """Run the page's blocks up to and including ``block``."""
        for name in ENV_TO_CLEAR:
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
        monkeypatch.setenv("MAILPARTNER_API_KEY", served.fake.api_key)
        monkeypatch.setenv("MAILPARTNER_BASE_URL", served.base_url)
        if self.redis_url is not None:
            monkeypatch.setenv(REDIS_URL_ENV, self.redis_url)
        monkeypatch.chdir(self.workdir)
        monkeypatch.syspath_prepend(str(self.workdir))
        seen = len(served.fake.requests)
        target = self.blocks.index(block)
        try:
            while self.ran <= target:
                current = self.blocks[self.ran]
                self.ran += 1
                if current.not_run is None:
                    try:
                        self._run(current)
                    except BaseException as exc:
                        if current is not block:
                            exc.add_note(f"raised by {current.name}, which {block.name} builds on")
                        raise
        finally:
            self.used_ids.update(str(request.message_id) for request in served.fake.requests[seen:])
            self._forget_modules()
        if self.ran == len(self.blocks):
            self.close()

    def _forget_modules(self) -> None:
        """Drop the page's own modules, so another page's ``worker.py`` is its own."""
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if path is not None and Path(path).parent == self.workdir:
                del sys.modules[name]

    def _run(self, block: Block) -> None:
        code = block.compile()
        if block.title is not None and block.title.endswith(".py"):
            (self.workdir / block.title).write_text(block.source, encoding="utf-8")
        namespace = self.namespace
        if block.is_test_file:
            namespace = {"__name__": Path(block.title or "test_example.py").stem}
        before = dict(namespace)
        with logging_restored():
            try:
                if code.co_flags & inspect.CO_COROUTINE:
                    self.portal.call(_await, FunctionType(code, namespace)())
                else:
                    exec(code, namespace)  # noqa: S102 (our own documentation)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise
            for test in self._tests_defined(namespace, before):
                self._call_test(block, test)
        # A client the example left unclosed warns now, in this block's test.
        gc.collect()

    @staticmethod
    def _tests_defined(
        namespace: MutableMapping[str, Any], before: MutableMapping[str, Any]
    ) -> list[Callable[..., Any]]:
        return [
            value
            for name, value in namespace.items()
            if name.startswith("test")
            and inspect.isfunction(value)
            and before.get(name) is not value
        ]

    def _call_test(self, block: Block, test: Callable[..., Any]) -> None:
        arguments: dict[str, Any] = {}
        for name in inspect.signature(test).parameters:
            if name != "mailpartner_fake":
                raise TypeError(
                    f"{block.name}: {test.__name__} asks for {name!r}; documentation tests "
                    "may only use the mailpartner_fake fixture"
                )
            arguments[name] = FakeMailPartner()
        if not inspect.iscoroutinefunction(test):
            test(**arguments)
            return
        marks = {mark.name for mark in getattr(test, "pytestmark", [])}
        if not marks & {"anyio", "asyncio"}:
            raise TypeError(
                f"{block.name}: async {test.__name__} needs @pytest.mark.anyio "
                "(or asyncio), or pytest will not run it"
            )
        self.portal.call(_await, test(**arguments))


class PageRuns:
    """The runs of the pages met so far, each in its own temporary directory."""

    def __init__(
        self, tmp_path_factory: pytest.TempPathFactory, redis_url: Callable[[], str]
    ) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._redis_url = redis_url  # started on first need
        self._runs: dict[str, PageRun] = {}

    def __getitem__(self, page: str) -> PageRun:
        if page not in self._runs:
            workdir = self._tmp_path_factory.mktemp(Path(page).stem)
            needs_redis = any(REDIS_URL_ENV in b.source for b in BLOCKS if b.page == page)
            redis_url = self._redis_url() if needs_redis else None
            self._runs[page] = PageRun(page, workdir, redis_url)
        return self._runs[page]

    def close(self) -> None:
        for run in self._runs.values():
            run.close()


@pytest.fixture(scope="module")
def pages(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[PageRuns]:
    runs = PageRuns(tmp_path_factory, lambda: str(request.getfixturevalue("redis_server").url))
    yield runs
    runs.close()


# --- the tests --------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_example(
    block: Block,
    served: Served,
    pages: PageRuns,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if block.not_run is not None:
        block.compile()  # at least it parses
        pytest.skip(f"{block.name} not run: {block.not_run}")
    pages[block.page].run_through(block, served, monkeypatch)


def test_every_page_has_examples_and_few_are_not_run() -> None:
    pages_with_code = {block.page for block in BLOCKS}
    assert "README.md" in pages_with_code
    not_run = [block.name for block in BLOCKS if block.not_run is not None]
    assert len(not_run) <= len(BLOCKS) // 10, f"too many blocks not run: {not_run}"


def test_no_message_id_is_used_by_two_pages(
    served: Served, pages: PageRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every page run to its end against the one fake (pages already run stay as they are).
    for page in dict.fromkeys(block.page for block in BLOCKS):
        run = pages[page]
        if run.ran < len(run.blocks):
            run.run_through(run.blocks[-1], served, monkeypatch)
    used = {page: pages[page].used_ids for page in dict.fromkeys(b.page for b in BLOCKS)}
    shared = {
        (first, second): sorted(used[first] & used[second], key=str)
        for first in used
        for second in used
        if first < second and used[first] & used[second]
    }
    assert shared == {}, f"pages that send the same ids: {shared}"
    assert sum(len(ids) for ids in used.values()) > 50  # the pages did send requests


def test_the_documented_fake_answers_the_special_ids_as_the_pages_say() -> None:
    fake = documented_fake()
    with fake.client() as client:
        assert client.cancel("1").code == 200  # any other id: scheduled an hour ahead
        for message_id, code in SPECIAL_IDS.items():
            with pytest.raises(APIError) as caught:
                client.cancel(message_id)
            assert caught.value.code == code


def test_a_test_file_block_runs_in_its_own_namespace(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        '```python title="app.py"\nVALUE = 1\n```\n\n'
        '```python title="test_app.py"\nfrom app import VALUE\n\n\n'
        "def test_value():\n    assert VALUE == 1\n```\n"
    )
    app, test_file = python_blocks(page, tmp_path)
    assert (app.title, app.is_test_file) == ("app.py", False)
    assert (test_file.title, test_file.is_test_file) == ("test_app.py", True)


def test_collector_finds_indented_fences_and_refuses_other_spellings(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n\n    ```python\n    x = 1\n    ```\n\n```sh\nls\n```\n")
    (block,) = python_blocks(page, tmp_path)
    assert (block.line, block.source, block.not_run) == (3, "x = 1\n", None)
    page.write_text("```py\nx = 1\n```\n")
    with pytest.raises(ValueError, match="never run"):
        python_blocks(page, tmp_path)
    page.write_text("```python\n# not run:\nx = 1\n```\n")
    with pytest.raises(ValueError, match="say why"):
        python_blocks(page, tmp_path)


def _cli_help(*command: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "mailpartner_async", *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_no_text_tells_to_install_the_unpublished_package_from_pypi() -> None:
    texts = {path.relative_to(ROOT).as_posix(): path.read_text("utf-8") for path in PAGES}
    for path in sorted((ROOT / "mailpartner_async").rglob("*.py")):
        texts[path.relative_to(ROOT).as_posix()] = path.read_text("utf-8")
    for command in ((), ("cancel",), ("serve-fake",)):
        texts[" ".join(("mailpartner", *command, "--help"))] = _cli_help(*command)
    for page in ("README.md", "docs/index.md"):
        assert "not on PyPI yet" in " ".join(texts[page].split()), page
    install = INSTALL_SECTION.search(texts["docs/index.md"])
    assert install is not None
    assert "### From PyPI, once it is published" in install.group()
    texts["docs/index.md"] = texts["docs/index.md"].replace(install.group(), "")
    wrong = sorted(name for name, text in texts.items() if UNPUBLISHED_INSTALL.search(text))
    assert wrong == [], f"install from PyPI, which does not have the package: {wrong}"


@pytest.mark.parametrize(
    ("page", "says"),
    [
        # Where top-level await runs, next to the README's first example.
        ("README.md", "Top-level `await` runs as is in `python -m asyncio`"),
        ("README.md", "put the block in an `async def main()` and call `asyncio.run(main())`"),
        # What rate_limit=None is for.
        ("docs/batch.md", "`rate_limit=None` takes the cap away: that is for a fake or a local"),
        ("docs/batch.md", "Never against the real API."),
    ],
)
def test_pages_answer_what_new_readers_asked(page: str, says: str) -> None:
    assert says in " ".join((ROOT / page).read_text("utf-8").split())


def test_collector_includes_snippet_lines_as_mkdocs_does(tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text("import os\n\nx = 1\n")
    page = tmp_path / "page.md"
    page.write_text('```python\ny = 0\n--8<-- "example.py"\nz = x\n```\n')
    (block,) = python_blocks(page, tmp_path)
    assert block.source == "y = 0\nimport os\n\nx = 1\nz = x\n"
