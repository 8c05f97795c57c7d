"""scripts/generate_sync.py: what it renames (code, never prose), the ``# ASYNC``
blocks, and what ``--check`` fails on, on a small tree in a temporary directory."""

from __future__ import annotations

import collections
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import generate_sync as gen


def to_sync(text: str) -> str:
    return gen.convert(text, (gen.SYNC,), collections.Counter())


def to_httpx2(text: str) -> str:
    return gen.convert(text, (gen.HTTPX2,), collections.Counter())


# --- what is renamed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "twin"),
    [
        ("x: AsyncMailPartner = AsyncMailPartner()\n", "x: MailPartner = MailPartner()\n"),
        ("class _AsyncRun(httpx.AsyncClient): ...\n", "class _Run(httpx.Client): ...\n"),
        ("await async_sleep(limiter.async_pacer())\n", "sleep(limiter.pacer())\n"),
        ("t = ASYNC_TRANSPORTS\n", "t = TRANSPORTS\n"),
        ("await client.aclose()\n", "client.close()\n"),
        ("raise StopAsyncIteration\n", "raise StopIteration\n"),
        ("x = await anext(it)\n", "x = next(it)\n"),
        ("from .._async.batch import AsyncBatch\n", "from .._sync.batch import Batch\n"),
        ("import mailpartner_async\n", "import mailpartner_async\n"),
        (
            "async def f():\n    async with g() as h:\n        async for i in h:\n"
            "            await i\n",
            "def f():\n    with g() as h:\n        for i in h:\n            i\n",
        ),
    ],
)
def test_sync_axis_renames_names_and_drops_the_keywords(source: str, twin: str) -> None:
    assert to_sync(source) == twin


def test_plain_prose_stays_while_code_spans_and_name_tokens_are_renamed() -> None:
    source = (
        '"""AsyncMailPartner in prose; ``AsyncMailPartner`` and ``async with`` in code;\n'
        ":class:`~mailpartner_async.AsyncMailPartner`, :meth:`aclose`, ``await``.\n"
        '"""\n'
        "# AsyncMailPartner in a comment, `AsyncMailPartner` in its code span\n"
        "client = AsyncMailPartner()\n"
    )
    assert to_sync(source) == (
        '"""AsyncMailPartner in prose; ``MailPartner`` and ``with`` in code;\n'
        ":class:`~mailpartner_async.MailPartner`, :meth:`close`, ``await``.\n"
        '"""\n'
        "# AsyncMailPartner in a comment, `MailPartner` in its code span\n"
        "client = MailPartner()\n"
    )


def test_an_issue_link_and_a_url_stay_on_the_httpx2_axis() -> None:
    source = (
        "import httpx\n"
        "# ResourceWarnings (encode/httpx#3686); ``httpx.AsyncClient`` is renamed.\n"
        'URL = "https://github.com/encode/httpx#readme"\n'
    )
    assert to_httpx2(source) == (
        "import httpx2\n"
        "# ResourceWarnings (encode/httpx#3686); ``httpx2.AsyncClient`` is renamed.\n"
        'URL = "https://github.com/encode/httpx#readme"\n'
    )


def test_a_string_the_code_uses_has_its_names_renamed() -> None:
    source = (
        '__all__ = ["AsyncHttpxTransport"]\n'
        'if transport != "httpx":\n'
        '    agent = f"httpx/{httpx.__version__}"\n'
    )
    assert to_httpx2(source) == (
        '__all__ = ["AsyncHttpx2Transport"]\n'
        'if transport != "httpx2":\n'
        '    agent = f"httpx2/{httpx2.__version__}"\n'
    )


def test_only_a_dotted_async_is_a_module_path() -> None:
    source = '"""``_async/client.py`` makes ``_sync/``; see :mod:`mailpartner_async._async`."""\n'
    assert to_sync(source) == (
        '"""``_async/client.py`` makes ``_sync/``; see :mod:`mailpartner_async._sync`."""\n'
    )


def test_a_literal_block_in_a_docstring_is_code() -> None:
    source = (
        'def f():\n    """Closes.\n\n    Example::\n\n'
        "        async with AsyncMailPartner() as client:\n"
        "            await client.cancel('1')\n\n"
        '    AsyncMailPartner, after the block, is prose.\n    """\n'
    )
    assert to_sync(source) == (
        'def f():\n    """Closes.\n\n    Example::\n\n'
        "        with MailPartner() as client:\n"
        "            client.cancel('1')\n\n"
        '    AsyncMailPartner, after the block, is prose.\n    """\n'
    )


def test_anyio_decorator_lines_are_removed() -> None:
    source = "@pytest.mark.anyio\nasync def test_x() -> None:\n    await f()\n"
    assert to_sync(source) == "def test_x() -> None:\n    f()\n"


# --- if True:  # ASYNC -------------------------------------------------------------


def test_async_block_keeps_the_else_body_dedented_in_the_sync_twin() -> None:
    source = (
        "async def wait(t: float) -> None:\n"
        "    if True:  # ASYNC: anyio sleeps\n"
        "        await anyio.sleep(t)\n"
        "    else:\n"
        "        text = '''\n"
        "    kept as it is'''\n"
        "        time.sleep(t)\n"
        "    done()\n"
    )
    assert to_sync(source) == (
        "def wait(t: float) -> None:\n"
        "    text = '''\n"
        "    kept as it is'''\n"
        "    time.sleep(t)\n"
        "    done()\n"
    )


def test_async_block_without_else_is_dropped_from_the_sync_twin() -> None:
    source = "import time\n\nif True:  # ASYNC\n    import anyio\n\nx = 1\n"
    assert to_sync(source) == "import time\n\n\nx = 1\n"


def test_async_block_stays_on_the_httpx2_axis() -> None:
    source = "if True:  # ASYNC\n    import anyio\nelse:\n    import time\n"
    assert to_httpx2(source) == source


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("x = 1  # ASYNC\n", "line 1: '# ASYNC' belongs on a line `if True:  # ASYNC`"),
        ("if x:  # ASYNC\n    pass\n", "belongs on a line `if True:  # ASYNC`"),
        ("if True:  # ASYNC\n    a()\nelif b:\n    c()\n", "takes `else:`, not `elif`"),
        ("if True:  # ASYNC\n    a()\nelse: c()\n", "line 3: an `# ASYNC` branch goes on"),
    ],
)
def test_a_misplaced_async_directive_is_an_error(source: str, error: str) -> None:
    with pytest.raises(gen.GenerateError, match=re.escape(error)):
        to_sync(source)


# --- the tree: targets, --check ----------------------------------------------------

GENERIC = gen.Rename(r"(_*)Async([A-Z]\w*)", r"\1\2")
ONE_RULE = dataclasses.replace(gen.SYNC, renames=(GENERIC,), decorators=())
HTTPX_ONLY = gen.Axis(renames=(gen.Rename("httpx", "httpx2"),))


def project(
    root: Path,
    *,
    async_only: frozenset[str] = frozenset(),
    httpx2_twins: tuple[tuple[str, str], ...] = (),
    sync: gen.Axis = ONE_RULE,
) -> gen.Project:
    """The real layout's trees at ``root``, with one rule per axis and no httpx2 twins
    by default (every rule of the real axes would be dead on so small a tree)."""
    return gen.Project(
        root, async_only=async_only, httpx2_twins=httpx2_twins, sync=sync, httpx2=HTTPX_ONLY
    )


def write(root: Path, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)


@pytest.fixture
def tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A tree whose twins are up to date: generated once, then checked clean."""
    write(tmp_path, "mailpartner_async/_async/__init__.py", "")
    write(tmp_path, "mailpartner_async/_async/client.py", "class AsyncClient:\n    pass\n")
    write(tmp_path, "tests/_async/test_client.py", "def test_x() -> None:\n    AsyncClient()\n")
    assert gen.main([], project(tmp_path)) == 0
    assert gen.main(["--check"], project(tmp_path)) == 0
    capsys.readouterr()
    return tmp_path


def test_twins_are_written_with_the_header_and_an_empty_source_has_an_empty_twin(
    tree: Path,
) -> None:
    assert (tree / "mailpartner_async/_sync/__init__.py").read_text() == ""
    assert (tree / "mailpartner_async/_sync/client.py").read_text() == (
        gen.HEADER.format(source="mailpartner_async/_async/client.py") + "class Client:\n    pass\n"
    )
    assert "    Client()\n" in (tree / "tests/_sync/test_client.py").read_text()


def test_a_new_async_module_without_its_twin_fails_check(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree, "mailpartner_async/_async/sub/foo.py", "class AsyncFoo:\n    pass\n")
    assert gen.main(["--check"], project(tree)) == 1
    out = capsys.readouterr().out
    assert "+++ mailpartner_async/_sync/sub/foo.py (generated)" in out
    assert "missing: mailpartner_async/_sync/sub/foo.py; run `nox -s generate`" in out
    assert not (tree / "mailpartner_async/_sync/sub/foo.py").exists()


def test_a_twin_no_source_makes_is_stale(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, "mailpartner_async/_sync/bar.py", "x = 1\n")
    write(tree, "tests/_sync/test_bar.py", "x = 1\n")
    for argv in (["--check"], []):
        assert gen.main(argv, project(tree)) == 1
        out = capsys.readouterr().out
        assert "stale: mailpartner_async/_sync/bar.py is in a generated tree" in out
        assert "stale: tests/_sync/test_bar.py is in a generated tree" in out


def test_an_async_only_module_has_no_twin_and_must_exist(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree, "mailpartner_async/_async/http_aiohttp.py", "import aiohttp\n")
    only = frozenset({"mailpartner_async/_async/http_aiohttp.py"})
    assert gen.main(["--check"], project(tree, async_only=only)) == 0
    (tree / "mailpartner_async/_async/http_aiohttp.py").unlink()
    assert gen.main(["--check"], project(tree, async_only=only)) == 1
    assert "http_aiohttp.py is named in the generator's layout but does not exist" in (
        capsys.readouterr().out
    )


def test_a_dead_rule_fails_check(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = gen.Rename("aclose", "close")
    sync = dataclasses.replace(gen.SYNC, renames=(GENERIC, dead), decorators=("pytest.mark.x",))
    assert gen.main(["--check"], project(tree, sync=sync)) == 1
    out = capsys.readouterr().out
    assert "dead rule (matches nothing): 'aclose' -> 'close'" in out
    assert "dead rule (matches nothing): @pytest.mark.x" in out


def test_an_httpx2_twin_in_async_gets_its_sync_twin_from_the_httpx_source(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree, "mailpartner_async/_async/http_httpx.py", "import httpx\n\nhttpx.AsyncClient()\n")
    twins = (("mailpartner_async/_async/http_httpx.py", "mailpartner_async/_async/http_httpx2.py"),)
    layout = project(tree, httpx2_twins=twins)
    assert gen.main([], layout) == 0
    assert gen.main(["--check"], layout) == 0
    header = gen.HEADER.format(source="mailpartner_async/_async/http_httpx.py")
    assert (tree / "mailpartner_async/_async/http_httpx2.py").read_text() == (
        header + "import httpx2\n\nhttpx2.AsyncClient()\n"
    )
    assert (tree / "mailpartner_async/_sync/http_httpx2.py").read_text() == (
        header + "import httpx2\n\nhttpx2.Client()\n"
    )
    assert (tree / "mailpartner_async/_sync/http_httpx.py").exists()


def test_a_ruff_other_than_the_pin_refuses_to_generate(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gen._ruff

    def other_ruff(args: list[str], text: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        if args == ["--version"]:
            return subprocess.CompletedProcess(args, 0, "ruff 0.0.1\n", "")
        return real(args, text, cwd)

    monkeypatch.setattr(gen, "_ruff", other_ruff)
    assert gen.main(["--check"], project(tree)) == 1
    assert "this one is 0.0.1" in capsys.readouterr().out
