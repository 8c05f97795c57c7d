"""The API reference as built: run by the ``docs`` nox session, on the site it built.

Not a ``test_*.py`` file, so the ``tests`` sessions (which have no mkdocs) do not
collect it; ``nox -s docs`` runs it on its ``site/`` (``$DOCS_SITE``). Run alone
(``pytest tests/docs/docs_reference.py``), it builds the site into a temporary directory.

It reads ``reference/index.html`` as a reader sees it: the headings mkdocstrings
gives each object (their ``id`` is the path shown) and the signatures' text.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

import mailpartner_async
from mailpartner_async import testing

ROOT: Final = Path(__file__).resolve().parents[2]
HEADING_ID: Final = re.compile(r'<h[2-6] id="(?P<path>mailpartner_async[\w.]*)"')
TAG: Final = re.compile(r"<[^>]+>")
# Members the package uses between its own modules: never in the reference.
INTERNAL: Final = (
    "mailpartner_async.BatchProgress.add",
    "mailpartner_async.AsyncBatch.next_indexed",
    "mailpartner_async.Batch.next_indexed",
    "mailpartner_async.Journal.is_final",
    "mailpartner_async.Journal.record_start",
    "mailpartner_async.Journal.settle",
    "mailpartner_async.testing.FakeMailPartner.handle",
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The reference page's HTML, from ``$DOCS_SITE`` or a fresh strict build."""
    given = os.environ.get("DOCS_SITE")
    if given:
        site = Path(given)
    else:
        site = tmp_path_factory.mktemp("site")
        subprocess.run(  # noqa: S603 - mkdocs on our own docs
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        )
    return (site / "reference" / "index.html").read_text(encoding="utf-8")


def shown_paths(page: str) -> set[str]:
    return {match["path"] for match in HEADING_ID.finditer(page)}


def text_of(page: str) -> str:
    return html.unescape(TAG.sub("", page))


def test_every_public_name_is_in_the_reference_under_its_public_path(reference: str) -> None:
    shown = shown_paths(reference)
    public = {f"mailpartner_async.{name}" for name in mailpartner_async.__all__}
    public -= {"mailpartner_async.__version__"}
    assert public - shown == set()
    assert {
        "mailpartner_async.redis.RedisRateLimiter",
        "mailpartner_async.testing.FakeMailPartner",
        "mailpartner_async.testing.FakeClock",
    } <= shown
    private = sorted(path for path in shown if "._" in path and not path.endswith("__call__"))
    assert private == []  # errors under mailpartner_async.X, not ..._exceptions.X


def test_cancel_result_fields_and_cancel_code_members_are_listed(reference: str) -> None:
    shown = shown_paths(reference)
    fields = set(mailpartner_async.CancelResult.model_fields)
    assert fields == {"success", "code", "message", "message_id", "attempts"}
    assert {f"mailpartner_async.CancelResult.{name}" for name in fields} <= shown
    members = {f"mailpartner_async.CancelCode.{code.name}" for code in mailpartner_async.CancelCode}
    assert members <= shown
    text = text_of(reference)
    for code in mailpartner_async.CancelCode:
        assert f"{code.name} = {code.value}" in text


def test_internal_members_are_not_shown(reference: str) -> None:
    assert sorted(set(INTERNAL) & shown_paths(reference)) == []
    for path in INTERNAL:  # they do exist: hiding them is the reference's doing
        owner, _, name = path.rpartition(".")
        module = testing if owner.startswith("mailpartner_async.testing") else mailpartner_async
        assert hasattr(getattr(module, owner.rpartition(".")[2]), name)


def test_signatures_show_default_values_not_constant_names(reference: str) -> None:
    text = " ".join(text_of(reference).split())
    assert "timeout=10.0, max_retries=2," in text
    assert "rate_limit=2000," in text
    assert "initial_delay=0.5, max_delay=8.0" in text
    constants = sorted(set(re.findall(r"=\s*((?:DEFAULT|DEADLINE)_[A-Z_]+)", text)))
    assert constants == []
