"""Time in the CLI: the DST hours refused or read as told, and a wrong local clock caught
by the server's ``Date`` header before it skips a reachable message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import pytest

from mailpartner_async.cli.send_times import parse_send_at
from mailpartner_async.cli.server_clock import ServerClock
from tests.support.server import ScriptedServer, reply

PARIS: Final = ZoneInfo("Europe/Paris")
NOW: Final = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
KEY: Final = "mpk-time-test-Hq4Lp8"


# --- the DST hours -----------------------------------------------------------------

AUTUMN: Final = "2026-10-25 02:30:00"  # Paris shows 02:00-03:00 twice
SPRING: Final = "2026-03-29 02:30:00"  # Paris skips 02:00-03:00


@pytest.mark.parametrize(
    ("text", "dst", "expected"),
    [
        (AUTUMN, "earlier", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (AUTUMN, "later", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
        (SPRING, "earlier", datetime(2026, 3, 29, 0, 30, tzinfo=UTC)),
        (SPRING, "later", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        ("2026-10-25 03:30:00", "refuse", datetime(2026, 10, 25, 2, 30, tzinfo=UTC)),
        ("2026-10-25T02:30:00+02:00", "refuse", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ],
)
def test_dst_times_are_read_as_the_option_says(text: str, dst: str, expected: datetime) -> None:
    when = parse_send_at(text, PARIS, dst=dst)  # type: ignore[arg-type]

    assert when.astimezone(UTC) == expected


@pytest.mark.parametrize("text", [AUTUMN, SPRING])
def test_the_earlier_reading_sorts_before_the_later(text: str) -> None:
    earlier = parse_send_at(text, PARIS, dst="earlier")
    later = parse_send_at(text, PARIS, dst="later")

    assert earlier < later
    assert later - earlier == timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            AUTUMN,
            "line 4: send_at '2026-10-25 02:30:00' happens twice in Europe/Paris (the clocks "
            "go back): write its offset (+02:00 or +01:00) or pass --dst-times earlier|later",
        ),
        (
            SPRING,
            "line 4: send_at '2026-03-29 02:30:00' does not exist in Europe/Paris (the clocks "
            "go forward): write its offset (+01:00 or +02:00) or pass --dst-times earlier|later",
        ),
    ],
)
def test_an_ambiguous_or_missing_local_time_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="line 4: send_at") as raised:
        parse_send_at(text, PARIS, line=4)

    assert str(raised.value) == message


def _cli(
    *args: str, timeout: float = 30, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if "MAILPARTNER" not in name}
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "mailpartner_async", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        preexec_fn=preexec,
    )


def test_the_autumn_hour_exits_2_and_is_read_with_dst_times(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(f"message_id;send_at\n62000;{AUTUMN}\n", encoding="utf-8")

    refused = _cli("cancel", "--sandbox", "--dry-run", "--from-file", str(campaign))
    read = _cli(
        "cancel", "--sandbox", "--dry-run", "--dst-times", "earlier", "--from-file", str(campaign)
    )

    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"mailpartner: error: {campaign}: line 2: send_at '2026-10-25 02:30:00' happens twice in "
        "Europe/Paris (the clocks go back): write its offset (+02:00 or +01:00) or pass "
        "--dst-times earlier|later; nothing was sent"
    ]
    assert read.returncode == 0, read.stderr
    assert read.stderr.startswith("plan: ")


# --- the server's clock --------------------------------------------------------------


def test_before_any_answer_the_clock_skips_nothing() -> None:
    clock = ServerClock(lambda: NOW)

    assert clock() < NOW - timedelta(hours=1)


@pytest.mark.parametrize(
    ("server_time", "margin", "warns"),
    [
        (NOW - timedelta(minutes=6), timedelta(minutes=6), "6m 00s ahead of"),
        (NOW + timedelta(minutes=2), timedelta(minutes=2), "2m 00s behind"),
        (NOW - timedelta(seconds=31), timedelta(seconds=31), "31s ahead of"),
        (NOW - timedelta(seconds=30), timedelta(), None),
        (NOW + timedelta(seconds=20), timedelta(), None),
        (None, timedelta(), None),
    ],
)
def test_a_clock_off_by_more_than_30_s_warns_once_and_keeps_that_margin(
    server_time: datetime | None, margin: timedelta, warns: str | None
) -> None:
    clock = ServerClock(lambda: NOW)
    date = None if server_time is None else format_datetime(server_time, usegmt=True)

    first = clock.observe_date(date)
    second = clock.observe_date(date)

    assert clock() == NOW - margin
    assert second is None
    if warns is None:
        assert first is None
    else:
        assert first is not None
        assert first.startswith(f"plan: warning: this machine's clock is {warns} the server's")


def test_the_margin_is_the_largest_difference_seen() -> None:
    clock = ServerClock(lambda: NOW)

    clock.observe_date(format_datetime(NOW - timedelta(minutes=6), usegmt=True))
    clock.observe_date(format_datetime(NOW, usegmt=True))

    assert clock() == NOW - timedelta(minutes=6)


def test_a_fast_local_clock_never_skips_a_reachable_message(tmp_path: Path) -> None:
    """The server's clock is 6 minutes behind ours: a message 3 minutes away by our
    clock is 9 minutes away for the server, and must be asked. The ids taken before the
    first answer is read are asked whatever their time; after it, what is too late by
    both clocks is skipped."""
    now = datetime.now(UTC)
    late = {f"late{n}": now - timedelta(minutes=10 + n) for n in range(8)}
    rows = {
        "gone": now - timedelta(minutes=30),  # the first taken: asked
        **late,  # too late by both clocks
        "near": now + timedelta(minutes=3),  # reachable for the server
        "soon": now + timedelta(minutes=4),
    }
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(
        "message_id,send_at\n" + "".join(f"{k},{v.isoformat()}\n" for k, v in rows.items()),
        encoding="utf-8",
    )
    server_date = format_datetime(datetime.fromtimestamp(time.time() - 360, UTC), usegmt=True)
    with ScriptedServer() as server:
        server.default = reply(headers={"Date": server_date})
        for message_id in ["gone", *late]:
            server.script(message_id, reply(6, headers={"Date": server_date}))
        run = _cli(
            "cancel",
            "--api-key",
            KEY,
            "--base-url",
            server.base_url,
            "--concurrency",
            "1",
            "--rate-limit",
            "none",
            "--from-file",
            str(campaign),
        )
        asked = [request.message_id for request in server.requests]

    assert asked[0] == "gone"
    assert asked[-2:] == ["near", "soon"]
    assert len(asked) < len(rows)  # once the server's clock is known, the late are skipped
    warning = [line for line in run.stderr.splitlines() if line.startswith("plan: warning:")]
    assert len(warning) == 1
    assert "this machine's clock is 6m" in warning[0]
    assert "ahead of the server's (its Date header)" in warning[0]
    assert run.returncode == 1
