"""The journal: final outcomes appended as they happen, skipped on a rerun, torn tails cut."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from mailpartner_async import (
    AlreadyCancelledError,
    CancelCode,
    ConfigurationError,
    Journal,
)
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


def test_a_line_that_does_not_parse_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('garbage\n{"event": "final", "id": "3", "outcome": "cancelled"}\n[]\n')
    with Journal(path) as journal:
        assert journal.is_final("3")
        assert journal.previous.done == 1


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
