"""The CLI's output on any terminal: no control sequence printed raw, no encoding error,
and a closed pipe, a closed stdin or a closed stdout each end in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpartner_async.cli.terminal import OUTPUT_CLOSED, printable
from tests.support.server import ScriptedServer, reply

KEY: Final = "mpk-terminal-test-Wd3Kx9"
HOSTILE: Final = [
    "\x1b]0;owned\x07",  # retitles the window
    "\x1b[2J\x1b[H",  # clears the screen
    "\x1b[31mFAILED\x1b[0m",  # fake red text
    "\x9b31m",  # C1 CSI
    "\u202eevil\u202c",  # right-to-left override
    "\u2066isolate\u2069",
    "line\rover",
    "del\x7f",
]
RAW: Final = ("\x1b", "\x9b", "\u202e", "\u202c", "\u2066", "\u2069", "\r", "\x7f", "\x07")


@pytest.mark.parametrize(
    ("text", "encoding", "shown"),
    [
        ("\x1b[31mred", "utf-8", "\\u001b[31mred"),
        ("\x9b", "utf-8", "\\u009b"),
        ("a\u202eb", "utf-8", "a\\u202eb"),
        ("été…", "iso-8859-15", "été\\u2026"),
        ("été…", "ascii", "\\u00e9t\\u00e9\\u2026"),
        ("😀", "ascii", "\\ud83d\\ude00"),
        ("two\nlines", "ascii", "two\nlines"),
        ("tab\there", "utf-8", "tab\\u0009here"),
        ("plain", "ascii", "plain"),
    ],
)
def test_printable_escapes_controls_and_what_the_encoding_cannot_show(
    text: str, encoding: str, shown: str
) -> None:
    assert printable(text, encoding) == shown


@given(text=st.text(), encoding=st.sampled_from(["ascii", "iso-8859-15", "utf-8", "cp1252"]))
def test_an_outcome_line_stays_json_and_gives_back_the_same_text(text: str, encoding: str) -> None:
    line = json.dumps({"message": text}, ensure_ascii=False)

    shown = printable(line, encoding)

    shown.encode(encoding)  # never raises
    assert not any(char in shown for char in RAW)
    assert json.loads(shown) == {"message": text}


def _cli(
    *args: str,
    encoding: str = "utf-8",
    preexec: Callable[[], None] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    env = {name: value for name, value in os.environ.items() if "MAILPARTNER" not in name}
    env["PYTHONIOENCODING"] = encoding
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "mailpartner_async", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        env=env,
        preexec_fn=preexec,
    )


@pytest.mark.parametrize("encoding", ["ascii", "iso-8859-15", "utf-8"])
def test_hostile_ids_and_server_messages_never_reach_the_terminal_raw(encoding: str) -> None:
    with ScriptedServer() as server:
        for number, text in enumerate(HOSTILE):
            server.script(f"m{number}", reply(4, f"Le message… {text} est introuvable"))
        run = _cli(
            "cancel",
            "--api-key",
            KEY,
            "--base-url",
            server.base_url,
            "--rate-limit",
            "none",
            *(f"m{number}" for number in range(len(HOSTILE))),
            *HOSTILE,
            encoding=encoding,
        )

    stdout, stderr = run.stdout.decode(encoding), run.stderr.decode(encoding)
    assert run.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert not any(char in stdout + stderr for char in RAW)
    records = [json.loads(line) for line in stdout.splitlines()]
    assert len(records) == 2 * len(HOSTILE)  # every id asked, none lost to an encoding error
    messages = {record["message_id"]: record["message"] for record in records}
    for number, text in enumerate(HOSTILE):
        assert f"Le message… {text} est introuvable" in messages[f"m{number}"]
        assert text in messages  # the hostile id itself, given back exactly by JSON


def test_a_closed_pipe_stops_with_one_line_and_exit_1(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{n}\n" for n in range(20_000)), encoding="utf-8")
    env = {name: value for name, value in os.environ.items() if "MAILPARTNER" not in name}
    with subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "mailpartner_async", "cancel", "--sandbox", "--from-file", str(ids)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        first = child.stdout.readline()
        child.stdout.close()  # `| head -1`
        stderr = child.stderr.read().decode()
        returncode = child.wait(timeout=60)

    assert json.loads(first)["ok"] is True
    assert returncode == 1
    lines = stderr.splitlines()
    assert lines[-1] == f"mailpartner: error: {OUTPUT_CLOSED}"
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    # The verdict, then what this run did, come first.
    assert lines[0].endswith("never started.")
    assert lines[1].startswith("this run: ")
    assert int(lines[1].removeprefix("this run: ").split(" cancelled now")[0]) < 20_000


def test_a_closed_stdin_exits_2_with_one_line() -> None:
    run = _cli("cancel", "--sandbox", "--from-file", "-", preexec=lambda: os.close(0))

    assert run.returncode == 2
    assert run.stderr.decode().splitlines() == [
        "mailpartner: error: --from-file -: standard input is closed; "
        "pipe the ids in or give a file"
    ]


def test_a_closed_stdout_exits_2_with_one_line_before_any_request() -> None:
    run = _cli("cancel", "--sandbox", "300", preexec=lambda: os.close(1))

    assert run.returncode == 2
    assert run.stderr.decode().splitlines() == [
        "mailpartner: error: standard output is closed: the outcomes would be lost (> FILE)"
    ]
