"""The progress line, as a user sees it: the CLI's terminal output rendered by pyte."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pyte

from tests.test_cli import CLI, child_env

BAR = re.compile(r"^cancelling (\d+)/(\d+) · [\d.]+/s( · \S+( \S+)? left)? · \d+ cancelled")


def _run_on_terminal(*args: str) -> tuple[int, list[list[str]]]:
    """Run the CLI with stdout and stderr on one pseudo-terminal; screens after each read."""
    leader, follower = pty.openpty()
    screen = pyte.Screen(120, 100)
    stream = pyte.ByteStream(screen)
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [*CLI, *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=child_env()
    )
    os.close(follower)
    screens = []
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
        stream.feed(data)
        screens.append([line.rstrip() for line in screen.display])
    os.close(leader)
    return process.wait(timeout=10), screens


def test_progress_line_never_mixes_with_outcome_lines_and_shows_totals(tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    rows = [f"t-{n},2999-01-01T12:00:00+00:00" for n in range(60)]
    ids.write_text("message_id,send_at\n" + "\n".join(rows) + "\n")

    status, screens = _run_on_terminal("cancel", "--sandbox", "--from-file", str(ids))

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
    assert final[-1] == "60 cancelled now (of 60)"
