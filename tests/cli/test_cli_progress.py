"""The progress line, as a user sees it: the CLI's terminal output rendered by pyte."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pyte

from mailpartner_async import BatchProgress
from mailpartner_async.cli.progress import ProgressDisplay
from tests.cli.test_cli import CLI, child_env

BAR = re.compile(r"^cancelling (\d+)/(\d+) · [\d.]+/s( · \S+( \S+)? left)? · \d+ cancelled")


CLEAR_LINE = b"\r\x1b[2K"  # how the display erases its line


def run_on_terminal(*args: str) -> tuple[int, list[list[str]]]:
    """Run the CLI with stdout and stderr on one pseudo-terminal.

    Returns the exit status and the screens: one just before each time the progress
    line is erased, and the last one, so what was shown does not depend on how the
    reads happened to split the output.
    """
    leader, follower = pty.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [*CLI, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=child_env()
    )
    os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        output += data
    os.close(leader)
    screen = pyte.Screen(160, 100)
    stream = pyte.ByteStream(screen)
    screens = []
    for part in bytes(output).split(CLEAR_LINE):
        stream.feed(part)
        screens.append([line.rstrip() for line in screen.display])
        stream.feed(CLEAR_LINE)
    return process.wait(timeout=10), screens


def test_progress_line_never_mixes_with_outcome_lines_and_shows_totals(tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    rows = [f"t-{n},2999-01-01T12:00:00+00:00" for n in range(60)]
    ids.write_text("message_id,send_at\n" + "\n".join(rows) + "\n")

    status, screens = run_on_terminal("cancel", "--sandbox", "--from-file", str(ids))

    assert status == 0
    bars = [line for shown in screens for line in shown if BAR.match(line)]
    assert bars, "the progress line was never on screen"
    assert all(BAR.match(line)[2] == "60" for line in bars)  # type: ignore[index]
    final = [line for line in screens[-1] if line]
    outcome_lines = [line for line in final if line.startswith("{")]
    assert sorted(json.loads(line)["message_id"] for line in outcome_lines) == sorted(
        f"t-{n}" for n in range(60)
    )
    assert not any("cancelling" in line for line in final)  # cleared, never mixed in
    assert final[-1] == "this run: 60 cancelled now (of 60)"


def test_plain_ids_from_a_file_and_the_arguments_show_their_total(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"p-{n}\n" for n in range(60)))

    status, screens = run_on_terminal("cancel", "--sandbox", "a-1", "a-2", "--from-file", str(ids))

    assert status == 0
    bars = [line for shown in screens for line in shown if BAR.match(line)]
    assert bars, "the progress line was never on screen"
    assert {BAR.match(line)[2] for line in bars} == {"62"}  # type: ignore[index]
    assert [line for line in screens[-1] if line][-1] == "this run: 62 cancelled now (of 62)"


def test_a_rerun_with_the_journal_counts_only_the_ids_left(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"j-{n}\n" for n in range(60)))
    first = tmp_path / "first.txt"
    first.write_text("".join(f"j-{n}\n" for n in range(20)))
    journal = tmp_path / "run.journal"
    status, _ = run_on_terminal(
        "cancel", "--sandbox", "--journal", str(journal), "--from-file", str(first)
    )
    assert status == 0

    status, screens = run_on_terminal(
        "cancel", "--sandbox", "--journal", str(journal), "--from-file", str(ids)
    )

    assert status == 0
    bars = [line for shown in screens for line in shown if BAR.match(line)]
    assert bars, "the progress line was never on screen"
    # The 20 ids the journal holds as final get no outcome: 40 are left.
    assert {BAR.match(line)[2] for line in bars} == {"40"}  # type: ignore[index]


class _Terminal(io.StringIO):
    """What the CLI writes to a terminal, kept to be rendered by pyte."""

    def isatty(self) -> bool:
        return True


def _screen(terminal: _Terminal) -> list[str]:
    screen = pyte.Screen(80, 4)
    pyte.Stream(screen).feed(terminal.getvalue())
    return [line.rstrip() for line in screen.display]


def test_the_line_shows_the_time_left_at_the_current_pace() -> None:
    terminal = _Terminal()  # stdout and stderr on one terminal, as in a shell
    now = [1000.0]
    with ProgressDisplay(terminal, 600, terminal, clock=lambda: now[0]) as display:
        now[0] += 10  # 30 outcomes in 10 s: 3 a second, 570 left: 190 s
        counts = BatchProgress(done=30, cancelled=24, already_cancelled=1, too_late=3, failed=2)
        display.line('{"message_id": "30"}', counts)
        assert _screen(terminal)[:2] == [
            '{"message_id": "30"}',
            "cancelling 30/600 · 3.0/s · 3m 10s left · 25 cancelled · 3 too late · 2 failed",
        ]
        now[0] += 190  # 400 by 200 s: 2 a second, 200 left: 100 s
        display.line('{"message_id": "400"}', BatchProgress(done=400, cancelled=99))
        assert _screen(terminal)[:3] == [
            '{"message_id": "30"}',
            '{"message_id": "400"}',
            "cancelling 400/600 · 2.0/s · 1m 40s left · 99 cancelled · 0 too late · 0 failed",
        ]
        now[0] += 399  # 599 by 599 s: one left at one a second
        display(BatchProgress(done=599, cancelled=599))
        assert _screen(terminal)[2].startswith("cancelling 599/600 · 1.0/s · 1s left ·")
    assert _screen(terminal)[2] == ""  # closing the display clears the line
