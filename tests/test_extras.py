"""A feature without its extra: a ``ConfigurationError`` saying the right ``pip`` command.

The command depends on how the package was installed, read from pip's
``direct_url.json`` (PEP 610): real distributions built in a temporary directory
here. Each missing library is made missing as Python itself sees it
(``sys.modules[name] = None`` makes its import fail), in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import PathDistribution
from pathlib import Path
from typing import Any

import pytest

from mailpartner_async import ConfigurationError
from mailpartner_async._extras import MissingExtraError, install_command, missing_extra

ROOT = Path(__file__).resolve().parent.parent


def _distribution(tmp_path: Path, direct_url: Any | None) -> PathDistribution:
    info = tmp_path / "mailpartner_async-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: mailpartner-async\nVersion: 0.1.0\n")
    if direct_url is not None:
        text = direct_url if isinstance(direct_url, str) else json.dumps(direct_url)
        (info / "direct_url.json").write_text(text)
    return PathDistribution(info)


@pytest.mark.parametrize(
    ("direct_url", "command"),
    [
        pytest.param(None, "pip install 'mailpartner-async[httpx2]'", id="from-an-index"),
        pytest.param(
            {
                "url": "file:///tmp/dist/mailpartner_async-0.1.0-py3-none-any.whl",
                "archive_info": {"hashes": {"sha256": "00"}},
            },
            "pip install 'mailpartner-async[httpx2]'",
            id="from-a-wheel-file",
        ),
        pytest.param(
            {
                "url": "https://github.com/o/mailpartner-async",
                "vcs_info": {"vcs": "git", "commit_id": "abc"},
            },
            "pip install 'mailpartner-async[httpx2]'",
            id="from-git",
        ),
        pytest.param(
            {"url": "file:///home/me/mailpartner%20async", "dir_info": {"editable": True}},
            "pip install -e '.[httpx2]' in /home/me/mailpartner async",
            id="editable-clone",
        ),
        pytest.param(
            {"url": "file:///home/me/mp", "dir_info": {}},
            "pip install -e '.[httpx2]' in /home/me/mp",
            id="clone-installed-not-editable",
        ),
        pytest.param("{torn", "pip install 'mailpartner-async[httpx2]'", id="unreadable-record"),
        pytest.param({"dir_info": {}}, "pip install 'mailpartner-async[httpx2]'", id="no-url"),
    ],
)
def test_the_install_command_follows_how_the_package_was_installed(
    tmp_path: Path, direct_url: Any, command: str
) -> None:
    assert install_command("httpx2", _distribution(tmp_path, direct_url)) == command


def test_this_checkout_is_an_editable_install_so_the_command_names_the_clone() -> None:
    assert install_command("otel") == f"pip install -e '.[otel]' in {ROOT}"


def test_a_missing_extra_is_a_configuration_error_and_an_import_error() -> None:
    error = missing_extra("transport='httpx2'", "httpx2")

    assert isinstance(error, ConfigurationError)
    assert isinstance(error, ImportError)
    assert isinstance(error, MissingExtraError)
    assert str(error) == f"transport='httpx2' needs the httpx2 extra: {install_command('httpx2')}"


_CLIENT = """
from mailpartner_async import {cls}
try:
    {cls}("k" * 8, base_url="http://127.0.0.1:9/v1", transport={transport!r})
except Exception as exc:
    print(type(exc).__name__, exc, sep=": ")
"""
_IMPORT = """
try:
    import {module}
except Exception as exc:
    print(type(exc).__name__, isinstance(exc, ImportError), exc, sep=": ")
"""
_TRACER = """
import mailpartner_async
class Provider:
    def get_tracer(self, *args, **kwargs): ...
try:
    mailpartner_async.AsyncMailPartner("k" * 8, tracer_provider=Provider())
except Exception as exc:
    print(type(exc).__name__, exc, sep=": ")
"""
_CLI = """
import sys
from mailpartner_async.cli import main
sys.exit(main({argv!r}))
"""


def _without(missing: str, code: str) -> subprocess.CompletedProcess[str]:
    script = f"import sys\nsys.modules[{missing!r}] = None\n{code}"
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "", "MAILPARTNER_API_KEY": "k" * 8},
    )


@pytest.mark.parametrize(
    ("missing", "code", "printed"),
    [
        pytest.param(
            "httpx2",
            _CLIENT.format(cls="AsyncMailPartner", transport="httpx2"),
            "MissingExtraError: transport='httpx2' needs the httpx2 extra: {httpx2}",
            id="httpx2-async",
        ),
        pytest.param(
            "httpx2",
            _CLIENT.format(cls="MailPartner", transport="httpx2"),
            "MissingExtraError: transport='httpx2' needs the httpx2 extra: {httpx2}",
            id="httpx2-sync",
        ),
        pytest.param(
            "aiohttp",
            _CLIENT.format(cls="AsyncMailPartner", transport="aiohttp"),
            "MissingExtraError: transport='aiohttp' needs the aiohttp extra: {aiohttp}",
            id="aiohttp",
        ),
        pytest.param(
            "redis",
            _IMPORT.format(module="mailpartner_async.redis"),
            "MissingExtraError: True: mailpartner_async.redis needs the redis extra: {redis}",
            id="redis",
        ),
        pytest.param(
            "opentelemetry",
            _TRACER,
            "MissingExtraError: OpenTelemetry (tracer_provider, meter_provider) needs the "
            "otel extra: {otel}",
            id="otel",
        ),
    ],
)
def test_each_feature_without_its_extra_says_how_to_install_it(
    missing: str, code: str, printed: str
) -> None:
    done = _without(missing, code)

    commands = {
        extra: install_command(extra) for extra in ("httpx2", "aiohttp", "redis", "otel", "testing")
    }
    assert done.stderr == ""
    assert done.stdout.strip() == printed.format(**commands)


@pytest.mark.parametrize(
    ("missing", "argv", "line"),
    [
        pytest.param(
            "uvicorn",
            ["serve-fake"],
            "mailpartner: error: serve-fake needs the cli extra: {cli}",
            id="serve-fake",
        ),
        pytest.param(
            "redis",
            ["cancel", "--redis-url", "redis://127.0.0.1:9", "1"],
            "mailpartner: error: --redis-url needs the redis extra: {redis}",
            id="cancel-redis-url",
        ),
        pytest.param(
            "redis",
            ["rescue", "status", "--redis-url", "redis://127.0.0.1:9", "--campaign", "c"],
            "mailpartner: error: rescue needs the redis extra: {redis}",
            id="rescue",
        ),
    ],
)
def test_the_command_line_without_an_extra_exits_2_with_one_line(
    missing: str, argv: list[str], line: str
) -> None:
    done = _without(missing, _CLI.format(argv=argv))

    assert done.returncode == 2
    assert done.stdout == ""
    expected = line.format(cli=install_command("cli"), redis=install_command("redis"))
    assert done.stderr.splitlines() == [expected]


@pytest.mark.parametrize("transport", ["httpx", "httpx2"])
def test_the_async_client_on_asyncio_needs_no_trio(transport: str) -> None:
    # trio is no dependency: an asyncio user's client must connect (here to a closed
    # port, so the attempt fails as a connection error, not as trio's absence).
    code = f"""
import asyncio, socket
from mailpartner_async import APIConnectionError, AsyncMailPartner
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
async def run():
    async with AsyncMailPartner(
        "k" * 8, base_url=f"http://127.0.0.1:{{port}}/v1", transport={transport!r},
        max_retries=0, local_address="127.0.0.1",
    ) as client:
        try:
            await client.cancel("1")
        except APIConnectionError as exc:
            print("connection error", exc.request_sent)
asyncio.run(run())
"""
    done = _without("trio", code)

    assert (done.returncode, done.stdout, done.stderr) == (0, "connection error False\n", "")
