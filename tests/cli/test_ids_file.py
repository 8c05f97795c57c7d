"""The CLI's id files, table-driven: plain ids, JSON lines and CSV with send times."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mailpartner_async import ScheduledMessage
from mailpartner_async._core.models import BatchItem
from mailpartner_async.cli.inputs import read_items

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(["\ufeff300\n", "\n", "# a comment\n", " 301 \n"], ["300", "301"], id="plain"),
        pytest.param(
            ['{"messageId": "7", "scheduledDeliveryDate": "2020-09-25 12:00:00"}\n'],
            [ScheduledMessage("7", datetime(2020, 9, 25, 12, 0, tzinfo=PARIS))],
            id="providers-send-answer-in-paris-time",
        ),
        pytest.param(
            ['{"message_id": 8, "send_at": "2020-09-25T10:00:00Z"}\n', '{"message_id": "9"}\n'],
            [ScheduledMessage("8", datetime(2020, 9, 25, 10, 0, tzinfo=UTC)), "9"],
            id="json-lines-with-and-without-a-send-time",
        ),
        pytest.param(
            ["message_id,send_at\n", "a,2020-09-25T12:00:00+02:00\n", "b,\n"],
            [ScheduledMessage("a", datetime(2020, 9, 25, 10, 0, tzinfo=UTC)), "b"],
            id="csv-with-send-times",
        ),
        pytest.param(["message_id,note\n", "c,x\n"], ["c"], id="csv-without-send-times"),
        pytest.param([], [], id="empty"),
    ],
)
def test_id_files_are_read_in_file_order(lines: list[str], expected: list[BatchItem]) -> None:
    assert list(read_items(lines, PARIS)) == expected


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (['{"message_id": "1"}\n', "not json\n"], "line 2: not a JSON object"),
        (['{"message_id": "1"}\n', "\n", "[1]\n"], "line 3: not a JSON object"),
        (['{"send_at": "2020-01-01T00:00:00Z"}\n'], "line 1: no message_id"),
        (["message_id,send_at\n", "a,tomorrow\n"], "line 2: send_at 'tomorrow' is not a date"),
    ],
)
def test_a_line_that_cannot_be_read_is_named(lines: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        list(read_items(lines, PARIS))
