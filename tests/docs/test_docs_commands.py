"""Every ``mailpartner`` command a page shows, run as a reader runs it, its output checked.

Shell blocks (```sh, ```bash, ```console) are read line by line, a trailing ``\\``
joining the next line. A line runs our command when one of its ``&&`` parts starts
with ``mailpartner`` (or ``.venv/bin/mailpartner``, as the README's one-liner has it):
that part is the command, with its ``;``, pipes and redirections.

- ``mailpartner serve-fake ...`` runs until Ctrl+C, so it is not started: the fake its
  options describe is built as ``serve-fake`` builds it, which refuses a bad option.
- Every other command runs in ``bash``, in the page's working directory (fresh for
  each page), with this checkout's ``mailpartner`` first on ``PATH`` and the
  environment that "About the examples" (docs/index.md) sets up: the key and base URL
  of a fake built from the documented ``serve-fake`` command, fresh for each page and
  served over HTTP. A page's ```text title="NAME"``` block is a file the reader
  saves there first (``campaign.txt``).
- A ```text block right after a shell block that holds one command, in the same
  section (no heading between them), is what that command prints (standard output
  and error, as a terminal shows both). Its lines are compared as a multiset
  (outcomes come in completion order), ``…`` in a shown line standing for any text (a
  time, a duration). A command shown without its output must exit 0.
- Other lines (``pip install``, ``export``, ``curl``, ``uvicorn``, ``nox``) are the
  reader's setup and other programs: not run. A block whose first line is
  ``# not run: <reason>`` is skipped with that reason.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from mailpartner_async.cli.parser import build_parser
from mailpartner_async.cli.serve_fake import build_fake
from tests.docs.test_docs import FENCE, NOT_RUN, PAGES, ROOT, TITLE, documented_fake
from tests.support.uvicorn_thread import serve_asgi

SHELLS: Final = frozenset({"sh", "bash", "console", "shell"})
# Variables set for the command only (``KEY=value mailpartner ...``) may come first.
OUR_COMMAND: Final = re.compile(r"^((?:\w+=\S*\s+)*)(?:\.venv/bin/)?mailpartner(?=\s|$)")
FAKE_KEY: Final = "test-key"
COMMAND_TIMEOUT: Final = 120


@dataclasses.dataclass(frozen=True)
class Fence:
    page: str
    line: int
    language: str
    title: str | None
    body: list[str]
    end: int = 0  # the line of its closing fence


def fences(path: Path) -> list[Fence]:
    """Every fenced block of a page, in order."""
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Fence] = []
    number = 0
    while number < len(lines):
        number += 1
        opening = FENCE.match(lines[number - 1])
        if opening is None:
            continue
        start, fence, info = number, opening["fence"], opening["info"]
        body: list[str] = []
        while number < len(lines):
            number += 1
            text = lines[number - 1].strip()
            if text.startswith(fence) and not text.strip(fence[0]):
                break
            body.append(lines[number - 1])
        words = info.split()
        title = TITLE.search(info)
        language = words[0].lower() if words else ""
        found.append(Fence(page, start, language, title and title["title"], body, number))
    return found


def _same_section(path: Path, before: Fence, after: Fence) -> bool:
    """No Markdown heading between the two blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()[before.end : after.line - 1]
    return not any(line.startswith("#") for line in lines)


def joined(body: list[str]) -> list[str]:
    """The block's lines, each ``\\``-continued line joined to the next."""
    lines: list[str] = []
    pending = ""
    for line in body:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    return [line.strip() for line in lines if line.strip()]


def our_commands(line: str) -> list[str]:
    """The parts of a shell line that run ``mailpartner``."""
    if line.startswith("#"):
        return []
    parts = [part.strip() for part in line.split("&&")]
    return [OUR_COMMAND.sub(r"\1mailpartner", part) for part in parts if OUR_COMMAND.match(part)]


@dataclasses.dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str
    shown: list[str] | None  # the output the page shows, if it does
    not_run: str | None

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def page_commands(path: Path) -> tuple[list[Command], dict[str, str]]:
    """The commands a page shows, and the files it gives (title -> text)."""
    blocks = fences(path)
    files = {b.title: "\n".join(b.body) + "\n" for b in blocks if b.title and b.language == "text"}
    commands: list[Command] = []
    for index, block in enumerate(blocks):
        if block.language not in SHELLS:
            continue
        first = next((line.strip() for line in block.body if line.strip()), "")
        reason = NOT_RUN.match(first)
        found = [c for line in joined(block.body) for c in our_commands(line)]
        after = blocks[index + 1] if index + 1 < len(blocks) else None
        shown = None
        if (
            len(found) == 1
            and after is not None
            and after.language == "text"
            and not after.title
            and _same_section(path, block, after)
        ):
            shown = [line for line in after.body if line.strip()]
        commands += [
            Command(block.page, block.line, text, shown, reason and (reason["reason"] or "?"))
            for text in found
        ]
    return commands, files


def all_commands() -> list[Command]:
    return [command for page in PAGES for command in page_commands(page)[0]]


COMMANDS: Final = all_commands()


# --- the fake each page's commands reach ----------------------------------------------------


@contextlib.contextmanager
def served_fake() -> Iterator[str]:
    """A fresh documented fake over HTTP on a free port; yields its base URL."""
    with serve_asgi(documented_fake().asgi_app) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with this checkout's ``mailpartner``, to put first on PATH."""
    directory = tmp_path_factory.mktemp("bin")
    script = directory / "mailpartner"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m mailpartner_async "$@"\n')
    script.chmod(0o755)
    return directory


def _matches(shown: str, printed: str) -> bool:
    pattern = ".*".join(re.escape(piece) for piece in shown.split("…"))
    return re.fullmatch(pattern, printed) is not None


def assert_prints(shown: list[str], printed: list[str]) -> None:
    """Each printed line matches one shown line, one to one, in any order."""
    left = collections.Counter(printed)
    unmatched: list[str] = []
    for line in shown:
        match = next((p for p in left if left[p] and _matches(line, p)), None)
        if match is None:
            unmatched.append(line)
        else:
            left[match] -= 1
    extra = sorted(left.elements())
    assert (unmatched, extra) == ([], []), (
        f"shown, not printed: {unmatched}; printed, not shown: {extra}"
    )


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.name)
def test_command(command: Command, shim: Path, tmp_path: Path) -> None:
    if command.not_run is not None:
        pytest.skip(command.not_run)
    argv = shlex.split(command.text, comments=True)
    if argv[1:2] == ["serve-fake"]:
        build_fake(build_parser().parse_args(argv[1:]))  # a bad option raises here
        return
    _, files = page_commands(ROOT / command.page)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with served_fake() as base_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_PROXY")},
            "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
            "MAILPARTNER_API_KEY": FAKE_KEY,
            "MAILPARTNER_BASE_URL": base_url,
        }
        done = subprocess.run(  # noqa: S603 - the page's own command, in bash
            ["bash", "-o", "pipefail", "-c", command.text],  # noqa: S607
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    printed = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    if command.shown is None:
        assert done.returncode == 0, done.stderr
    else:
        assert_prints(command.shown, printed)


def test_the_pages_show_the_commands_a_reader_needs() -> None:
    names = {command.name.split(":")[0] for command in COMMANDS if command.not_run is None}
    assert {"README.md", "docs/index.md", "docs/cli.md", "docs/rescue.md"} <= names
    assert [c.name for c in COMMANDS if c.shown is None and "--sandbox" in c.text] == []


def test_a_shown_line_matches_with_its_ellipses_only() -> None:
    assert _matches(
        "plan: the last one starts at … (in … min)",
        "plan: the last one starts at 2026-12-01T23:00:00+01:00 (in 0.1 min)",
    )
    assert not _matches("3 cancelled now (of 3)", "3 cancelled (of 3)")
    assert not _matches("a…b", "a…bc")
