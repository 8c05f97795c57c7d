"""The command line's journal, plan, progress and summary, as a tired person reads them.

In process (``main``) against the sandbox, or against a base URL nothing listens
on when the run must be refused before any request.
"""

from __future__ import annotations

import io
import json
import logging
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Final

import pyte
import pytest

from mailpartner_async import BatchProgress
from mailpartner_async.cli import main
from mailpartner_async.cli.output import summary
from mailpartner_async.cli.progress import ProgressDisplay, open_display

SANDBOX_HEADER: Final = (
    '{"event": "journal", "version": 1, '
    '"target": {"base_url": "sandbox", "key": null, "sandbox": true}}\n'
)
NOWHERE: Final = "http://127.0.0.1:9/v1"  # the discard port: no request may get there


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], list[str]]:
    status = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out.splitlines(), err.splitlines()


def _final(message_id: str, outcome: str, code: int) -> str:
    record = {"event": "final", "id": message_id, "outcome": outcome, "code": code}
    return json.dumps(record) + "\n"


def _campaign(path: Path, rows: dict[str, timedelta], zone: timezone = UTC) -> Path:
    now = datetime.now(zone).replace(microsecond=0)
    lines = ["message_id,send_at", *(f"{i},{(now + d).isoformat()}" for i, d in rows.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- stopped ------------------------------------------------------------------------


def test_outcome_lines_carry_stopped_true_for_code_200_and_code_5(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = _run(["cancel", "--sandbox", "300", "300"], capsys)
    records = [json.loads(line) for line in out]
    assert [(r["code"], r["ok"], r["stopped"]) for r in records] == [
        (200, True, True),
        (5, False, True),
    ]
    assert status == 0


# --- the journal's target -----------------------------------------------------------


def test_a_rehearsal_journal_is_refused_by_the_real_run_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "j.jsonl"
    assert _run(["cancel", "--sandbox", "1", "2", "--journal", str(journal)], capsys)[0] == 0
    monkeypatch.setenv("MAILPARTNER_API_KEY", "the-real-secret-key")
    argv = ["cancel", "--base-url", NOWHERE, "1", "2", "--journal", str(journal)]
    status, out, err = _run(argv, capsys)
    assert (status, out) == (2, [])
    assert len(err) == 1
    assert "made for the sandbox" in err[0]
    assert "--journal-any-target" in err[0]
    assert "the-real-secret-key" not in err[0]


def test_journal_any_target_uses_the_rehearsal_journal_anyway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "j.jsonl"
    _run(["cancel", "--sandbox", "1", "--journal", str(journal)], capsys)
    monkeypatch.setenv("MAILPARTNER_API_KEY", "k")
    argv = ["cancel", "--base-url", NOWHERE, "1", "--journal", str(journal)]
    status, out, err = _run([*argv, "--journal-any-target"], capsys)
    assert (status, out) == (0, [])  # nothing left: no request made
    assert err[0].startswith(f"nothing left to do: the journal {journal} holds all 1 ids")


def test_a_journal_that_is_the_input_file_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n2\n3\n")
    status, out, err = _run(
        ["cancel", "--sandbox", "--from-file", str(ids), "--journal", str(ids)], capsys
    )
    assert (status, out) == (2, [])
    assert err == [
        f"mailpartner: error: --journal {ids} is the input file {ids}: "
        "give the journal a path of its own"
    ]
    assert ids.read_text() == "1\n2\n3\n"


def test_a_symlinked_journal_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("a line\nunterminated")
    (tmp_path / "j.jsonl").symlink_to(notes)
    status, _, err = _run(
        ["cancel", "--sandbox", "1", "--journal", str(tmp_path / "j.jsonl")], capsys
    )
    assert status == 2
    assert "is a symbolic link" in err[0]
    assert notes.read_text() == "a line\nunterminated"


def test_odd_journal_lines_are_ignored_and_counted_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text(SANDBOX_HEADER + '{"event":"final","id":"1","outcome":"done"}\n')
    status, out, err = _run(["cancel", "--sandbox", "1", "--journal", str(journal)], capsys)
    assert (status, len(out)) == (0, 1)  # id 1 is not final: it is asked
    assert err[-1].endswith("; 1 journal lines not understood were ignored")


# --- the plan from what is left -----------------------------------------------------


def test_the_plan_counts_only_the_ids_the_journal_does_not_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text(
        SANDBOX_HEADER + _final("a", "cancelled", 200) + _final("b", "already_sent", 7)
    )
    rows = {"a": timedelta(minutes=1), "b": timedelta(minutes=2), "c": timedelta(hours=1)}
    campaign = _campaign(tmp_path / "campaign.csv", rows)
    argv = ["cancel", "--sandbox", "--dry-run", "--from-file", str(campaign)]
    status, _, err = _run([*argv, "--journal", str(journal)], capsys)
    assert status == 0
    assert err[0] == (
        f"plan: the journal {journal} already holds 2 of these ids as final "
        "(1 cancelled, 1 already sent); planning the 1 left"
    )
    assert err[1].startswith("plan: 1 of 1 ids can be cancelled in time")
    assert not any("last 5 minutes" in line for line in err)


def test_a_finished_campaigns_rerun_says_so_in_one_line_and_exits_by_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text(
        SANDBOX_HEADER + _final("a", "cancelled", 200) + _final("b", "already_sent", 7)
    )
    status, out, err = _run(["cancel", "--sandbox", "a", "b", "--journal", str(journal)], capsys)
    assert (status, out) == (1, [])
    assert err == [
        f"nothing left to do: the journal {journal} holds all 2 ids as final "
        "(1 cancelled, 1 already sent). 1 email will still go out: 1 already sent."
    ]


def test_plan_times_are_shown_in_the_zone_of_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paris_winter = timezone(timedelta(hours=1))
    rows = {str(n): timedelta(hours=1, seconds=n) for n in range(3)}
    campaign = _campaign(tmp_path / "campaign.csv", rows, paris_winter)
    _, _, err = _run(["cancel", "--sandbox", "--dry-run", "--from-file", str(campaign)], capsys)
    [last] = [line for line in err if "the last one starts at" in line]
    assert "+01:00 (in" in last


# --- the summary --------------------------------------------------------------------


def test_the_summary_says_first_how_many_emails_will_still_go_out_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {"late": timedelta(minutes=1), "fine": timedelta(hours=1)}
    campaign = _campaign(tmp_path / "campaign.csv", rows)
    status, _, err = _run(["cancel", "--sandbox", "--from-file", str(campaign)], capsys)
    assert status == 1
    assert err[-2:] == [
        "1 email will still go out: 1 too late.",
        "this run: 1 cancelled now, 1 too late (of 2)",
    ]


def test_the_summary_of_a_run_cut_short_counts_the_ids_never_started() -> None:
    progress = BatchProgress(done=3, cancelled=2, failed=1)
    held = BatchProgress(done=4, cancelled=3, already_sent=1)
    text = summary(progress, None, held=held, never_started=1731)
    assert text.splitlines()[0] == (
        "1733 emails will still go out: 1 already sent, 1 failed, 1731 never started."
    )
    unknown = summary(progress, None, never_started=None).splitlines()[0]
    assert unknown == "Emails will still go out: 1 failed, and the ids not read yet, never started."


def test_the_summary_when_every_email_is_stopped_says_none_goes_out() -> None:
    progress = BatchProgress(done=3, cancelled=2, already_cancelled=1)
    assert summary(progress, None).splitlines() == [
        "No email will go out: all 3 are stopped (cancelled now or already).",
        "this run: 2 cancelled now, 1 already cancelled (of 3)",
    ]


# --- the progress line --------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _screen(terminal: _Terminal) -> list[str]:
    screen = pyte.Screen(100, 5)
    pyte.Stream(screen).feed(terminal.getvalue().replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display]


def test_the_rate_and_time_left_count_only_the_outcomes_that_cost_a_request() -> None:
    terminal = _Terminal()
    now = [1000.0]
    with ProgressDisplay(terminal, 600, terminal, clock=lambda: now[0]) as display:
        now[0] += 10  # 30 outcomes in 10 s, 20 of them skipped as too late: 1 request a second
        counts = BatchProgress(done=30, cancelled=10, too_late=20)
        display.line('{"message_id": "30"}', counts, paced=10)
        assert _screen(terminal)[1] == (
            "cancelling 30/600 · 1.0/s · 9m 30s left · 10 cancelled · 20 too late · 0 failed"
        )


def test_log_lines_print_above_the_progress_line_never_glued_to_it() -> None:
    terminal = _Terminal()
    with ExitStack() as stack:
        display = open_display(stack, terminal, terminal, 10)
        assert display is not None
        display.line('{"message_id": "1"}', BatchProgress(done=1, cancelled=1))
        logging.getLogger("mailpartner_async").warning("retrying cancel of '2' (timeout)")
        assert _screen(terminal)[:3] == [
            '{"message_id": "1"}',
            "retrying cancel of '2' (timeout)",
            "cancelling 1/10 · " + _screen(terminal)[2].split(" · ", 1)[1],
        ]
    assert not logging.getLogger("mailpartner_async").handlers  # removed with the display


def test_a_finished_rerun_of_a_plain_id_file_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids, journal = tmp_path / "ids.txt", tmp_path / "j.jsonl"
    ids.write_text("1\n2\n")
    argv = ["cancel", "--sandbox", "--from-file", str(ids), "--journal", str(journal)]
    assert _run(argv, capsys)[0] == 0
    status, out, err = _run(argv, capsys)
    assert (status, out) == (0, [])
    assert err == [
        f"nothing left to do: the journal {journal} holds all 2 ids as final (2 cancelled). "
        "No email will go out: all 2 are stopped (cancelled now or already)."
    ]


def test_a_journal_that_standard_input_reads_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text(SANDBOX_HEADER)
    with journal.open() as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        argv = ["cancel", "--sandbox", "--from-file", "-", "--journal", str(journal)]
        status, out, err = _run(argv, capsys)
    assert (status, out) == (2, [])
    assert err == [
        f"mailpartner: error: --journal {journal} is standard input: "
        "give the journal a path of its own"
    ]


def test_a_dry_run_creates_no_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.jsonl"
    status, _, _ = _run(
        ["cancel", "--sandbox", "--dry-run", "1", "--journal", str(journal)], capsys
    )
    assert status == 0
    assert not journal.exists()
