"""The pytest plugin, used the way a user would: a test file asking for mailpartner_fake."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "mailpartner_async.testing.pytest_plugin"

# A user's test file. Both tests register id 300: they pass only with a fresh fake each.
USER_TESTS = """
from datetime import timedelta

def test_cancel(mailpartner_fake):
    with mailpartner_fake.client() as client:
        assert client.cancel(mailpartner_fake.schedule(timedelta(hours=1), 300)).code == 200

def test_cancel_again_on_a_fresh_fake(mailpartner_fake):
    mailpartner_fake.schedule(timedelta(hours=1), 300)
    assert mailpartner_fake.requests == []
"""


def test_fixture_comes_from_the_plugin_module(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", PLUGIN, "-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_without_the_plugin_there_is_no_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'mailpartner_fake' not found*"])


def test_installed_entry_point_gives_the_fixture_with_no_flag(pytester: pytest.Pytester) -> None:
    ours = [ep for ep in entry_points(group="pytest11") if ep.value == PLUGIN]
    if not ours:
        pytest.skip("the pytest11 entry point is not installed (pip install -e .)")
    pytester.makepyfile(test_user=USER_TESTS)
    # pytest-asyncio, autoloaded too, warns about its own unset option; not ours.
    result = pytester.runpytest("-W", "error", "-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=2)


# What pytest does with the entry point in every run of every project that installs the SDK.
LOAD_THE_PLUGIN = """
import json, sys
import mailpartner_async.testing.pytest_plugin
heavy = ("mailpartner_async._async", "mailpartner_async._core", "mailpartner_async._sync",
         "mailpartner_async.testing._fake", "httpx", "httpcore", "anyio", "pydantic")
print(json.dumps(sorted(name for name in sys.modules if name.startswith(heavy))))
"""


def test_loading_the_plugin_imports_pytest_only_not_the_sdk() -> None:
    out = subprocess.run(  # noqa: S603 - our own interpreter on our own script
        [sys.executable, "-W", "error", "-c", LOAD_THE_PLUGIN],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == []
