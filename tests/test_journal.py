"""The journal: final outcomes appended as they happen, skipped on a rerun, torn tails cut."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailpartner_async import (
    AlreadyCancelledError,
    CancelCode,
    CancellationTooLateError,
    ConfigurationError,
    Journal,
    ScheduledMessage,
)
from mailpartner_async._core.journal import JournalTarget, key_fingerprint
from mailpartner_async.testing import FakeMailPartner


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _fake(*ids: str) -> FakeMailPartner:
    fake = FakeMailPartner()
    for message_id in ids:
        fake.schedule(timedelta(hours=1), message_id=message_id)
    return fake


@pytest.mark.anyio
async def test_each_final_outcome_is_recorded_after_its_start(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    fake = _fake("1")
    async with fake.async_client() as client:
        await client.cancel_many(["1", "404"], concurrency=1, journal=path)
    assert _records(path) == [
        {"event": "journal", "version": 1},
        {"event": "start", "id": "1"},
        {"event": "final", "id": "1", "outcome": "cancelled", "code": 200},
        {"event": "start", "id": "404"},
        {"event": "final", "id": "404", "outcome": "not_found", "code": 4},
    ]


@pytest.mark.anyio
async def test_a_rerun_skips_final_ids_and_retries_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    fake = _fake("1", "2")
    fake.fail_next(1, "connect_error")
    async with fake.async_client(max_retries=0) as client:
        first = await client.cancel_many(["1", "2"], concurrency=1, journal=path)
        assert [o.ok for o in first] == [False, True]  # "1" met the connect error
        second = await client.cancel_many(["1", "2"], concurrency=1, journal=path)
    assert [(o.message_id, o.ok) for o in second] == [("1", True)]
    assert [r.message_id for r in fake.requests] == ["1", "2", "1"]
    with Journal(path) as journal:
        assert journal.previous.cancelled == 2
        assert journal.is_final("1")
        assert journal.is_final("2")


@pytest.mark.anyio
async def test_code_5_for_an_id_started_by_a_lost_run_counts_as_cancelled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    # The lost run: its start line was written, the call cancelled "7", the answer
    # never reached the journal, and the kill tore the line it was writing.
    path.write_text('{"event": "start", "id": "7"}\n{"event": "fin')
    fake = _fake("7", "8")
    async with fake.async_client() as client:
        await client.cancel("7")
        outcomes = await client.cancel_many(["7", "8"], concurrency=1, journal=path)
    assert [(o.message_id, o.ok) for o in outcomes] == [("7", True), ("8", True)]
    assert outcomes[0].result is not None
    assert outcomes[0].result.code == CancelCode.ALREADY_CANCELLED
    records = _records(path)  # the torn tail was cut: every line parses
    assert records[0] == {"event": "start", "id": "7"}
    assert {"event": "final", "id": "7", "outcome": "cancelled", "code": 5} in records


@pytest.mark.anyio
async def test_code_5_for_an_id_never_started_stays_already_cancelled(tmp_path: Path) -> None:
    fake = _fake("9")
    async with fake.async_client() as client:
        await client.cancel("9")
        (outcome,) = await client.cancel_many(["9"], journal=tmp_path / "j.jsonl")
    assert isinstance(outcome.error, AlreadyCancelledError)


def test_a_line_that_does_not_parse_is_ignored_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"event": "final", "id": "3", "outcome": "cancelled"}\ngarbage\n[]\n')
    with Journal(path) as journal:
        assert journal.is_final("3")
        assert journal.previous.done == 1
        assert journal.ignored == 2


def test_two_runs_cannot_share_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path), pytest.raises(ConfigurationError, match="in use by another run"):
        Journal(path).open()


def test_sync_client_records_to_the_journal_too(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    fake = _fake("1")
    with fake.client() as client, Journal(path) as journal:
        client.cancel_many(["1"], journal=journal)
        assert journal.is_open  # a journal you opened stays open
    assert _records(path)[-1]["outcome"] == "cancelled"


# --- A journal bound to its campaign (issue 21, item 5) ---------------------------------


@pytest.mark.parametrize(
    "odd",
    [
        '{"event":"final","id":"1","outcome":"done"}',
        '{"event":"final","id":"1","outcome":["x"]}',
        '{"event":"final","id":"1"}',
        '{"event":"rotate","id":"1"}',
        '{"event":"journal","version":1}',
        "7",
    ],
)
def test_an_odd_line_is_ignored_counted_and_leaves_its_id_not_final(
    tmp_path: Path, odd: str
) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(f'{{"event": "journal", "version": 1}}\n{odd}\n')
    with Journal(path) as journal:
        assert not journal.is_final("1")
        assert journal.ignored == 1
        assert journal.previous.done == 0


def test_a_symlinked_journal_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\nunterminated")
    link = tmp_path / "j.jsonl"
    link.symlink_to(notes)
    with pytest.raises(ConfigurationError, match="symbolic link"):
        Journal(link).open()
    assert notes.read_text() == "keep me\nunterminated"


@pytest.mark.parametrize("text", ["message_id\n300\n301\n", "300", "\n"])
def test_a_file_that_is_not_a_journal_is_refused_untouched(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ids.txt"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match="is not a journal"):
        Journal(path).open()
    assert path.read_text() == text


def test_a_journal_knows_its_target_and_refuses_another(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    sandbox = JournalTarget.of("sandbox", "test-key", sandbox=True)
    real = JournalTarget.of("https://api.mailpartner.fr/v1", "real-key")
    with Journal(path, target=sandbox) as journal:
        journal.record_start("1")
    assert _records(path)[0]["target"] == {
        "base_url": "sandbox",
        "key": key_fingerprint("test-key"),
        "sandbox": True,
    }
    with pytest.raises(ConfigurationError, match="made for the sandbox") as refused:
        Journal(path, target=real).open()
    assert "--journal-any-target" in str(refused.value)
    assert "real-key" not in str(refused.value)
    with Journal(path, target=sandbox), Journal(tmp_path / "other.jsonl", target=real):
        pass  # its own target, and a new file, are fine
    assert not (tmp_path / "other.jsonl").read_bytes()  # nothing recorded: still empty
    with Journal(path, target=real, any_target=True) as journal:
        assert journal.recorded_target == sandbox


def test_another_key_at_the_same_url_is_another_target(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    url = "https://api.mailpartner.fr/v1"
    with Journal(path, target=JournalTarget.of(url, "key-one")) as journal:
        journal.record_start("1")
    with pytest.raises(ConfigurationError, match="made for https://api"):
        Journal(path, target=JournalTarget.of(url + "/", "key-two")).open()


def test_a_journal_with_no_target_is_refused_by_a_run_that_has_one(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"event": "final", "id": "3", "outcome": "cancelled"}\n')
    target = JournalTarget.of("https://api.mailpartner.fr/v1", "k")
    with pytest.raises(ConfigurationError, match="made for no target"):
        Journal(path, target=target).open()
    with Journal(path) as journal:  # the library without a target reads it as before
        assert journal.is_final("3")


def test_the_key_fingerprint_is_short_stable_and_never_the_key() -> None:
    key = "s3cr3t-api-key-0123456789"
    fingerprint = key_fingerprint(key)
    assert fingerprint == key_fingerprint(key)
    assert fingerprint != key_fingerprint(key + "x")
    assert key not in fingerprint
    assert fingerprint.startswith("hmac-sha256:")
    assert len(fingerprint) == len("hmac-sha256:") + 16


@pytest.mark.anyio
async def test_a_message_skipped_as_too_late_is_not_final_and_a_rerun_reconsiders_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    fake = _fake("1")
    now = datetime.now(UTC)
    # Read with the wrong zone: the send time looks 2 minutes away, it is an hour away.
    wrong = ScheduledMessage("1", now + timedelta(minutes=2))
    async with fake.async_client() as client:
        [skipped] = await client.cancel_many([wrong], journal=path)
        assert isinstance(skipped.error, CancellationTooLateError)
        assert fake.requests == []
        with Journal(path) as journal:
            assert not journal.is_final("1")
        right = ScheduledMessage("1", now + timedelta(hours=1))
        [cancelled] = await client.cancel_many([right], journal=path)
    assert cancelled.stopped
    assert fake.status("1") == "cancelled"


@pytest.mark.anyio
async def test_code_6_answered_by_the_server_stays_final(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    fake = FakeMailPartner()
    message_id = fake.schedule(timedelta(minutes=2))
    async with fake.async_client() as client:
        await client.cancel_many([message_id], journal=path)
    with Journal(path) as journal:
        assert journal.outcome_of(message_id) == "too_late"
