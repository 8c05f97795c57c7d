"""Campaign files as people export them: read right, or refused before any request.

Each case is the bytes a spreadsheet or a script writes, read through the CLI's own
reader (``ids_to_cancel``, the one the dry run and the run share); the refusals are
also run through the command, which must exit 2 with one line.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpartner_async import ScheduledMessage
from mailpartner_async._core.models import BatchItem
from mailpartner_async.cli.campaign import DELIMITERS, ID_NAMES, TIME_NAMES, column_name
from mailpartner_async.cli.errors import UsageError
from mailpartner_async.cli.inputs import ids_to_cancel

AT: Final = datetime(2026, 12, 1, 20, 22, 35, tzinfo=UTC)  # 21:22:35 in Paris
LATER: Final = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
BOTH: Final = [ScheduledMessage("62000", AT), ScheduledMessage("62001", LATER)]
PLAIN: Final = ["62000", "62001"]


def _read(path: Path) -> list[BatchItem]:
    with ExitStack() as stack:
        items, total = ids_to_cancel(
            [], str(path), timezone="Europe/Paris", dry_run=True, stack=stack
        )
        assert isinstance(items, list)
        assert total == len(items)
        return items


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


READ: Final = [
    (
        "excel-french-semicolons",
        _crlf("Message_ID;Send_At\n62000;2026-12-01 21:22:35\n62001;2026-12-01 22:00:00\n").encode(
            "cp1252"
        ),
        BOTH,
    ),
    (
        "excel-utf8-bom",
        codecs.BOM_UTF8
        + _crlf(
            "message_id,send_at\n62000,2026-12-01T21:22:35+01:00\n62001,2026-12-01T21:00:00Z\n"
        ).encode(),
        BOTH,
    ),
    (
        "excel-unicode-text-utf16-tabs",
        (
            "message_id\tsend_at\r\n62000\t2026-12-01 21:22:35\r\n62001\t2026-12-01 22:00:00\r\n"
        ).encode("utf-16"),
        BOTH,
    ),
    (
        "utf16-big-endian",
        codecs.BOM_UTF16_BE + "message_id\n62000\n62001\n".encode("utf-16-be"),
        PLAIN,
    ),
    (
        "libreoffice-quoted",
        b'"message_id","send_at"\n"62000","2026-12-01 21:22:35"\n"62001","2026-12-01 22:00:00"\n',
        BOTH,
    ),
    (
        "google-sheets",
        b"Message ID,Send At\r\n62000,2026-12-01 21:22:35\r\n62001,2026-12-01 22:00:00",
        BOTH,
    ),
    (
        "capitalised-aliases",
        b"Message_ID,Send_At\n62000,2026-12-01T21:22:35+01:00\n62001,2026-12-01T22:00:00+01:00\n",
        BOTH,
    ),
    (
        "id-and-send-at",
        b"id,send_at\n62000,2026-12-01T21:22:35+01:00\n62001,2026-12-01T22:00:00+01:00\n",
        BOTH,
    ),
    (
        "space-after-comma",
        b"message_id, send_at\n62000, 2026-12-01T21:22:35+01:00\n"
        b"62001, 2026-12-01T22:00:00+01:00\n",
        BOTH,
    ),
    (
        "provider-names",
        b"messageId,scheduledDeliveryDate\n62000,2026-12-01 21:22:35\n62001,2026-12-01 22:00:00\n",
        BOTH,
    ),
    (
        "provider-json-answers",
        b'{"success": true, "code": 200, "messageId": 62000,'
        b' "scheduledDeliveryDate": "2026-12-01 21:22:35"}\n'
        b'{"success": true, "code": 200, "messageId": 62001,'
        b' "scheduledDeliveryDate": "2026-12-01 22:00:00"}\n',
        BOTH,
    ),
    (
        "extra-columns-and-trailing-delimiter",
        b"email;message_id;send_at;\na@b.fr;62000;2026-12-01 21:22:35;\n"
        b"c@d.fr;62001;2026-12-01 22:00:00\n",
        BOTH,
    ),
    ("one-column-with-header", b"message_id\n62000\n62001\n", PLAIN),
    ("one-column-quoted", b'"Message ID"\n"62000"\n"62001"\n', PLAIN),
    ("plain-list", b"62000\n\n# from the export\n62001\n", PLAIN),
    ("plain-list-bom-crlf", codecs.BOM_UTF8 + b"62000\r\n62001\r\n", PLAIN),
    ("csv-without-send-times", b"message_id,email\n62000,a@b.fr\n62001,c@d.fr\n", PLAIN),
]


@pytest.mark.parametrize(
    ("content", "expected"), [case[1:] for case in READ], ids=[case[0] for case in READ]
)
def test_campaign_files_are_read_as_exported(
    tmp_path: Path, content: bytes, expected: list[BatchItem]
) -> None:
    path = tmp_path / "campaign.csv"
    path.write_bytes(content)

    assert _read(path) == expected


REFUSED: Final = [
    (
        "headerless-csv",
        b"62000,2026-12-01T21:22:35+01:00\n",
        "line 1: '62000,2026-12-01T21:22:35+01:00' holds a ',' but no header names a message "
        "id column: start the file with a header such as message_id,send_at",
    ),
    (
        "header-without-an-id-column",
        b"email;date\na@b.fr;2026-12-01\n",
        "line 1: 'email;date' holds a ';' but no header names a message id column",
    ),
    (
        "tab-in-a-plain-list",
        b"62000\n62001\t2026-12-01\n",
        "line 2: '62001\\t2026-12-01' holds a tab but no header names a message id column",
    ),
    ("semicolon-in-a-plain-list", b"62000\n62001;x\n", "line 2: '62001;x' holds a ';'"),
    (
        "space-in-a-plain-list",
        b"62000\n62001 2026-12-01\n",
        "line 2: '62001 2026-12-01' holds a space: write one id a line",
    ),
    (
        "header-word-in-a-plain-list",
        b"62000\nsend_at\n",
        "line 2: 'send_at' is a column name, not an id: remove it",
    ),
    (
        "repeated-header",
        b"message_id,send_at\n62000,\nmessage_id,send_at\n",
        "line 3: a second header line: remove it",
    ),
    (
        "two-id-columns",
        b"message_id,messageId\n1,2\n",
        "line 1: the header names two such columns ('message_id' and 'messageId'); keep one",
    ),
    (
        "more-values-than-the-header",
        b"message_id,send_at\n62000,2026-12-01,21:22\n",
        "line 2: 3 values where the header names 2: quote a value holding a ','",
    ),
    (
        "unclosed-quote",
        b'message_id,send_at\n"62000,2026-12-01\n',
        "line 2: the line cannot be read as delimited values",
    ),
    (
        "a-delimiter-in-a-one-column-id",
        b"message_id\n62000,62001\n",
        "line 2: the id '62000,62001' holds a ','",
    ),
    (
        "utf16-without-bom",
        "message_id\n62000\n".encode("utf-16-le"),
        "line 1: the id holds the control character U+0000 (a UTF-16 file without its "
        "byte-order mark? save it as UTF-8)",
    ),
    (
        "escape-sequence-id",
        b"62000\n\x1b]0;pwned\x07\n",
        "line 2: the id holds the control character U+001B",
    ),
    (
        "bidi-override-id",
        "62000\n\u202e00026\n".encode(),
        "line 2: the id holds the control character U+202E",
    ),
    (
        "latin1-file",
        "message_id;note\n62000;été\n".encode("latin-1"),
        "the ids are not UTF-8 text (byte 0xe9): save the file as UTF-8; nothing was sent",
    ),
    (
        "huge-field",
        b"message_id,send_at\n" + b"9" * 200_000 + b",\n",
        "line 2: a field is over 131072 characters: this is not a campaign file",
    ),
    (
        "huge-plain-id",
        b"9" * 5000 + b"\n",
        "line 1: an id of 5000 characters: is this the id file?",
    ),
    (
        "not-a-date",
        b"message_id;send_at\n62000;01/12/2026 21:22\n",
        "line 2: send_at '01/12/2026 21:22' is not a date: write ISO 8601",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_ambiguous_files_are_refused_naming_the_file_and_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "campaign.csv"
    path.write_bytes(content)

    with pytest.raises(UsageError) as raised:
        _read(path)

    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_a_refused_file_exits_2_with_one_line_before_any_request(
    tmp_path: Path, dry_run: bool
) -> None:
    path = tmp_path / "campaign.csv"
    path.write_bytes(b"62000,2026-12-01T21:22:35+01:00\n62001,2026-12-01T22:00:00+01:00\n")
    args = ["cancel", "--sandbox", "--from-file", str(path), *(["--dry-run"] if dry_run else [])]

    run = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "mailpartner_async", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"mailpartner: error: {path}: line 1: '62000,2026-12-01T21:22:35+01:00' holds a ',' but no "
        "header names a message id column: start the file with a header such as "
        "message_id,send_at; nothing was sent"
    ]


# --- the property: header words and delimiters never become ids ----------------------

_IDS = st.lists(
    st.text("0123456789abcdefABCDEF", min_size=1, max_size=12).filter(
        lambda t: column_name(t) not in ID_NAMES | TIME_NAMES
    ),
    min_size=1,
    max_size=8,
)
_SPELLINGS = st.sampled_from(
    [
        "message_id",
        "Message_ID",
        "messageId",
        "id",
        "ID",
        " message id ",
        '"message_id"',
        "Message-Id",
    ]
)
_TIME_SPELLINGS = st.sampled_from(
    ["send_at", "Send_At", " send at", '"scheduledDeliveryDate"', "note", "email"]
)


@given(
    ids=_IDS,
    id_name=_SPELLINGS,
    other=_TIME_SPELLINGS,
    delimiter=st.sampled_from(DELIMITERS),
    header=st.booleans(),
    other_first=st.booleans(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_no_header_word_nor_delimiter_ever_becomes_a_message_id(
    tmp_path_factory: pytest.TempPathFactory,
    ids: list[str],
    id_name: str,
    other: str,
    delimiter: str,
    header: bool,
    other_first: bool,
    encoding: str,
) -> None:
    columns = [other, id_name] if other_first else [id_name, other]
    lines = [delimiter.join(columns)] if header else []
    for message_id in ids:
        lines.append(delimiter.join(["", message_id] if other_first else [message_id, ""]))
    path = tmp_path_factory.mktemp("property") / "campaign.csv"
    path.write_bytes("\n".join(lines).encode(encoding))

    try:
        items = _read(path)
    except UsageError:
        assert not header  # only a file without its header may be refused
        return

    read = [str(item.message_id if isinstance(item, ScheduledMessage) else item) for item in items]
    assert read == ids
    for message_id in read:
        assert not any(mark in message_id for mark in DELIMITERS)
        assert column_name(message_id) not in ID_NAMES | TIME_NAMES


def test_a_bad_line_on_a_pipe_stops_there_naming_the_line() -> None:
    """A pipe is read as it comes: the ids before the bad line are cancelled, then the
    command stops with the line and what to do."""
    run = subprocess.run(
        [sys.executable, "-m", "mailpartner_async", "cancel", "--sandbox", "--from-file", "-"],
        input="62000\n62001\n62002;2026-12-01\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert run.returncode == 2
    assert run.stderr.splitlines()[-1] == (
        "mailpartner: error: the ids on standard input: line 3: '62002;2026-12-01' holds a "
        "';' but no header names a message id column: start the file with a header such as "
        "message_id,send_at; stopped there"
    )
    assert [json.loads(line)["message_id"] for line in run.stdout.splitlines()] == [
        "62000",
        "62001",
    ]
