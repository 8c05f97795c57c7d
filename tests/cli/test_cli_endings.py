"""``mailpartner cancel`` never takes a batch that did not finish for a finished one.

A batch whose own machinery fails (its journal cannot be written, say) either gives
the id an outcome or raises a ``MailPartnerError``; and a batch that ends without an
outcome for an id it took is caught by the CLI's ledger. Either way the command
prints the summary so far and one ``mailpartner: error:`` line, and exits 1, never 0.
The CLI runs in this process here, with the batch made to fail on purpose.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pytest

from mailpartner_async import (
    AsyncBatch,
    CancelCode,
    CancelOutcome,
    CancelResult,
    Journal,
    MailPartnerError,
    ScheduledMessage,
)
from mailpartner_async.cli import main
from mailpartner_async.cli.ledger import OutcomeLedger
from tests.cli.test_cli import CLI, child_env

IDS: Final = ["1", "2", "3"]
ERROR_PREFIX: Final = "mailpartner: error: "
ORIGINAL_ANEXT: Final = AsyncBatch.__anext__
ORIGINAL_ACLOSE: Final = AsyncBatch.aclose


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], list[str]]:
    status = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out.splitlines(), err.splitlines()


def _error_lines(err: list[str]) -> list[str]:
    return [line for line in err if line.startswith(ERROR_PREFIX)]


def _raise_after(count: int, error: BaseException) -> object:
    """An ``AsyncBatch.__anext__`` that raises ``error`` once ``count`` outcomes came."""

    async def anext_then_raise(self: AsyncBatch) -> CancelOutcome:
        if self.progress.done == count:
            raise error
        return await ORIGINAL_ANEXT(self)

    return anext_then_raise


@pytest.mark.parametrize("after", [0, 1, 2])
def test_a_mailpartner_error_from_the_batch_exits_1_with_the_summary_and_one_line(
    after: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = MailPartnerError("the journal could not be written (No space left on device)")
    monkeypatch.setattr(AsyncBatch, "__anext__", _raise_after(after, error))

    status, out, err = _run(["cancel", "--sandbox", *IDS], capsys)

    assert status == 1
    assert len(out) == after
    assert err[-2] == f"this run: {after} cancelled now (of {after})"
    assert _error_lines(err) == [
        f"{ERROR_PREFIX}the batch stopped before every id had its outcome: the journal "
        "could not be written (No space left on device); rerun with the same --journal to go on"
    ]


def test_a_mailpartner_error_when_the_batch_closes_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def aclose_then_raise(self: AsyncBatch) -> None:
        await ORIGINAL_ACLOSE(self)
        raise MailPartnerError("the journal could not be closed")

    monkeypatch.setattr(AsyncBatch, "aclose", aclose_then_raise)

    status, out, err = _run(["cancel", "--sandbox", *IDS], capsys)

    assert status == 1
    assert len(out) == len(IDS)
    assert len(_error_lines(err)) == 1
    assert "the journal could not be closed" in _error_lines(err)[0]


def test_the_error_line_is_one_line_and_masks_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = MailPartnerError("GET /v1/message-cancel?apiKey=s3cr3t-key-value\nthen gave up")
    monkeypatch.setattr(AsyncBatch, "__anext__", _raise_after(1, error))

    status, _, err = _run(["cancel", "--sandbox", *IDS], capsys)

    assert status == 1
    (line,) = _error_lines(err)
    assert "apiKey=[REDACTED] then gave up" in line
    assert "s3cr3t-key-value" not in "\n".join(err)


@pytest.mark.parametrize("after", [0, 1, 2])
def test_a_batch_that_ends_without_an_outcome_for_an_id_it_took_exits_1(
    after: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The silent ending: the iteration stops as if the batch were done.
    monkeypatch.setattr(AsyncBatch, "__anext__", _raise_after(after, StopAsyncIteration()))

    status, out, err = _run(["cancel", "--sandbox", "--concurrency", "3", *IDS], capsys)

    assert status == 1
    assert len(out) == after
    (line,) = _error_lines(err)
    # Which of the two it says depends on how far the workers got: see the ledger's tests.
    assert line.startswith(f"{ERROR_PREFIX}the batch ended "), line


def test_a_batch_that_ends_before_reading_every_id_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def stop_after_the_first(self: AsyncBatch) -> CancelOutcome:
        outcome = await ORIGINAL_ANEXT(self)
        self.stop_starting()  # as a batch that quietly stops taking ids would
        return outcome

    monkeypatch.setattr(AsyncBatch, "__anext__", stop_after_the_first)

    status, out, err = _run(["cancel", "--sandbox", "--concurrency", "1", *IDS], capsys)

    assert status == 1
    assert len(out) < len(IDS)
    assert _error_lines(err) == [
        f"{ERROR_PREFIX}the batch ended before it had read every id; "
        "rerun with the same --journal to go on"
    ]


def test_ids_the_journal_skips_as_final_are_no_missing_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = str(tmp_path / "journal.jsonl")
    assert _run(["cancel", "--sandbox", "1", "--journal", journal], capsys)[0] == 0

    status, out, err = _run(["cancel", "--sandbox", "1", "1", "2", "--journal", journal], capsys)

    assert status == 0
    assert len(out) == 1  # only 2: 1 is final in the journal, twice
    assert _error_lines(err) == []


def test_an_id_the_journal_cannot_encode_never_exits_0(tmp_path: Path) -> None:
    undecodable = os.fsdecode(b"\xff")  # as the shell passes $'\xff'
    argv = ["cancel", "--sandbox", "1", undecodable, "2", "--journal", str(tmp_path / "j")]

    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*CLI, *argv], capture_output=True, env=child_env(), timeout=30, check=False
    )

    assert done.returncode == 1, done.stderr
    outcome_lines = done.stdout.splitlines()
    error_lines = [
        line for line in done.stderr.splitlines() if line.startswith(ERROR_PREFIX.encode())
    ]
    # Either the id got an outcome (every id has its line), or the run says it stopped.
    assert len(outcome_lines) == 3 or len(error_lines) == 1, done.stderr


# --- the ledger, table-driven ----------------------------------------------------------

SEND_AT: Final = datetime(2030, 1, 1, tzinfo=UTC)


def _cancelled(message_id: str) -> CancelOutcome:
    result = CancelResult(
        success=True, code=CancelCode.CANCELLED, message="ok", message_id=message_id
    )
    return CancelOutcome(message_id, result=result)


@pytest.mark.parametrize(
    ("items", "taken", "answered", "says"),
    [
        (["1", "2"], 2, ["1", "2"], None),
        ([], 0, [], None),
        (["1", "1"], 2, ["1", "1"], None),
        ([ScheduledMessage("7", SEND_AT)], 1, ["7"], None),
        (["1", "2"], 2, ["2"], "the batch ended without the outcome of 1 of the ids it took"),
        (["1", "1", "2"], 3, ["1"], "the batch ended without the outcome of 2 of the ids it took"),
        (["1", "2", "3"], 1, ["1"], "the batch ended before it had read every id"),
        (["1", "2", "3"], 2, ["1"], "the batch ended without the outcome of 1 of the ids it took"),
    ],
)
def test_the_ledger_says_what_the_batch_left_undone(
    items: list[str | ScheduledMessage], taken: int, answered: list[str], says: str | None
) -> None:
    ledger = OutcomeLedger(items)
    reading = iter(ledger)
    for _ in range(taken):
        next(reading)
    if taken == len(items):
        assert next(reading, None) is None  # the batch reads the end of the input

    for message_id in answered:
        ledger.printed(_cancelled(message_id))

    assert ledger.unfinished(None) == says


def test_the_ledger_counts_an_id_final_in_the_journal_as_answered(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.jsonl") as journal:
        journal.settle(_cancelled("1"))
        ledger = OutcomeLedger(["1", "1", "2"])
        assert list(ledger) == ["1", "1", "2"]
        ledger.printed(_cancelled("2"))

        assert ledger.unanswered(journal) == 0
        assert ledger.unanswered(None) == 2
        assert ledger.unfinished(journal) is None
