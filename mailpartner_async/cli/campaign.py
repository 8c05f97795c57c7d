"""The forms of a campaign file, read line by line, or refused with the line and what to do.

:func:`read_items` reads the text lines of an id file (blank lines and ``#`` comments
skipped); the first line decides the form:

- a JSON object (``{...}``): JSON lines, each naming the id and optionally the send time;
- a header naming a message id column, its columns split at a tab, ``;`` or ``,``
  (whichever splits the header into a known column name): a delimited file, as Excel
  (French locale: ``;``; "Unicode text": tabs), LibreOffice and Google Sheets export it;
- a header holding only the id column's name (``message_id``): a one-column file;
- anything else: one id a line.

Column names are matched whatever their case, spacing, quotes, ``_``, ``-`` or ``.``
(``Message_ID``, ``message id``, ``"messageId"``, ``id``); see :data:`ID_NAMES` and
:data:`TIME_NAMES`. What could be read two ways is refused with a ``ValueError``
naming the line: a first line holding a delimiter but no id column, a plain-list line
holding a delimiter, a space or a header word, an id holding a control character, a
row with more values than the header, a field the ``csv`` module cannot read.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final

from .. import ScheduledMessage
from .._core.models import BatchItem
from .send_times import DstChoice, parse_send_at

__all__ = ["DELIMITERS", "ID_NAMES", "MAX_ID_LENGTH", "TIME_NAMES", "column_name", "read_items"]

DELIMITERS: Final = ("\t", ";", ",")
ID_NAMES: Final = frozenset({"messageid", "id", "msgid", "mailid", "emailid"})
"""A message id column's names, as :func:`column_name` writes them."""
TIME_NAMES: Final = frozenset(
    {"sendat", "scheduleddeliverydate", "scheduledat", "scheduledfor", "senddate", "sendtime"}
)
"""A send time column's names, as :func:`column_name` writes them."""
MAX_ID_LENGTH: Final = 1000  # a message id is a short token; longer is the wrong file
_SEPARATORS: Final = re.compile(r"[\s_.\-]+")
# C0 and C1 controls but the tab (a delimiter), DEL, the bidirectional formatting ones.
_UNSAFE: Final = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_BLANK: Final = " \r\n\x0b\x0c"
_SHOWN: Final = {"\t": "a tab", ";": "a ';'", ",": "a ','"}


def column_name(text: str) -> str:
    """A column's name as it is matched: no quotes, case, spaces, ``_``, ``-`` or ``.``."""
    return _SEPARATORS.sub("", text.strip().strip("\"'").strip()).lower()


@dataclass(frozen=True, slots=True)
class _Header:
    delimiter: str
    id_at: int
    time_at: int | None
    width: int


def read_items(
    lines: Iterable[str], timezone: tzinfo, *, dst: DstChoice = "refuse"
) -> Iterator[BatchItem]:
    """The ids (or scheduled messages) of an id file, lazily, in file order."""
    content = _content(lines)
    first = next(content, None)
    if first is None:
        return
    number, text = first
    if text.startswith("{"):
        yield from _json_lines(_chain(first, content), timezone, dst)
        return
    header = _header(number, text)
    if header is None:
        yield from _plain_ids(_chain(first, content))
    else:
        yield from _rows(content, header, timezone, dst)


def _content(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        # Not tabs: in a tab-separated file, a leading tab is an empty first value.
        text = (line.lstrip("\ufeff") if number == 1 else line).strip(_BLANK)
        if text and not text.startswith("#"):
            yield number, text


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _split(number: int, text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise ValueError(f"line {number}: {_csv_reason(exc)}") from None


def _csv_reason(exc: csv.Error) -> str:
    if "field limit" in str(exc):
        limit = csv.field_size_limit()
        return f"a field is over {limit} characters: this is not a campaign file"
    return f"the line cannot be read as delimited values ({exc}): check its quotes"


def _header(number: int, text: str) -> _Header | None:
    """The header the first line is, None for a plain id; refuses what is neither."""
    if column_name(text) in ID_NAMES:
        return _Header(delimiter="\n", id_at=0, time_at=None, width=1)  # one column
    found = [d for d in DELIMITERS if d in text and _names_an_id(_split(number, text, d))]
    if len(found) > 1:
        shown = " or ".join(_SHOWN[d] for d in found)
        raise ValueError(f"line {number}: the header splits at {shown}; keep one delimiter")
    if not found:
        _check_plain(number, text)
        return None
    fields = _split(number, text, found[0])
    names = [column_name(field) for field in fields]
    id_at = _column(number, names, ID_NAMES, fields)
    return _Header(found[0], id_at, _time_column(number, names, fields), len(names))


def _names_an_id(fields: Sequence[str]) -> bool:
    return any(column_name(field) in ID_NAMES for field in fields)


def _column(number: int, names: Sequence[str], known: frozenset[str], shown: Sequence[str]) -> int:
    at = [index for index, name in enumerate(names) if name in known]
    if len(at) > 1:  # a database export's row `id` next to `message_id`: the specific one
        at = [index for index in at if names[index] != "id"] or at
    if len(at) > 1:
        both = " and ".join(repr(shown[index].strip()) for index in at)
        raise ValueError(f"line {number}: the header names two such columns ({both}); keep one")
    return at[0]


def _time_column(number: int, names: Sequence[str], shown: Sequence[str]) -> int | None:
    if not any(name in TIME_NAMES for name in names):
        return None
    return _column(number, names, TIME_NAMES, shown)


def _plain_ids(lines: Iterator[tuple[int, str]]) -> Iterator[str]:
    for number, text in lines:
        _check_plain(number, text)
        yield text


def _check_plain(number: int, text: str) -> None:
    """A line of a plain id list: one id, nothing a person could mean as two values."""
    check_id(number, text)
    for delimiter in DELIMITERS:
        if delimiter in text:
            raise ValueError(
                f"line {number}: {_clip(text)} holds {_SHOWN[delimiter]} but no header names "
                "a message id column: start the file with a header such as message_id,send_at"
            )
    if column_name(text) in ID_NAMES | TIME_NAMES:
        raise ValueError(f"line {number}: {_clip(text)} is a column name, not an id: remove it")
    if any(char.isspace() for char in text):
        raise ValueError(f"line {number}: {_clip(text)} holds a space: write one id a line")


def check_id(number: int, text: str) -> str:
    """``text`` as a message id, or a ``ValueError`` naming line ``number``."""
    unsafe = _UNSAFE.search(text)
    if unsafe is not None:
        code = ord(unsafe.group())
        hint = (
            "a UTF-16 file without its byte-order mark? save it as UTF-8"
            if code == 0
            else "a message id never holds one: is this the id file?"
        )
        raise ValueError(f"line {number}: the id holds the control character U+{code:04X} ({hint})")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"line {number}: an id of {len(text)} characters: is this the id file?")
    return text


def _clip(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _rows(
    lines: Iterator[tuple[int, str]], header: _Header, timezone: tzinfo, dst: DstChoice
) -> Iterator[BatchItem]:
    for number, text in lines:
        row = [_unquoted(text)] if header.width == 1 else _split(number, text, header.delimiter)
        if any(field.strip() for field in row[header.width :]):
            raise ValueError(
                f"line {number}: {len(row)} values where the header names {header.width}: "
                f"quote a value holding {_SHOWN.get(header.delimiter, 'a delimiter')}"
            )
        row += [""] * (header.width - len(row))
        send_at = None if header.time_at is None else row[header.time_at]
        yield _item(number, row[header.id_at], send_at, timezone, dst)


def _unquoted(text: str) -> str:
    """A one-column file's value, without the quotes a spreadsheet may put around it."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def _item(number: int, raw_id: Any, send_at: Any, timezone: tzinfo, dst: DstChoice) -> BatchItem:
    message_id = "" if raw_id is None else str(raw_id).strip()
    if not message_id:
        raise ValueError(f"line {number}: no message_id")
    check_id(number, message_id)
    for delimiter in DELIMITERS:
        if delimiter in message_id:
            raise ValueError(
                f"line {number}: the id {_clip(message_id)} holds {_SHOWN[delimiter]}: "
                "a message id never does"
            )
    if column_name(message_id) in ID_NAMES:
        raise ValueError(f"line {number}: a second header line: remove it")
    if send_at is None or not str(send_at).strip():
        return message_id
    return ScheduledMessage(message_id, parse_send_at(str(send_at), timezone, dst=dst, line=number))


def _json_lines(
    lines: Iterator[tuple[int, str]], timezone: tzinfo, dst: DstChoice
) -> Iterator[BatchItem]:
    for number, text in lines:
        try:
            record = json.loads(text)
        except ValueError:
            raise ValueError(f"line {number}: not a JSON object") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number}: not a JSON object")
        yield _item(number, *_json_fields(number, record), timezone, dst)


def _json_fields(number: int, record: Mapping[str, Any]) -> tuple[Any, Any]:
    keys = [str(key) for key in record]
    names = [column_name(key) for key in keys]
    values = list(record.values())
    if not any(name in ID_NAMES for name in names):
        return None, None
    id_value = values[_column(number, names, ID_NAMES, keys)]
    time_at = _time_column(number, names, keys)
    return id_value, None if time_at is None else values[time_at]
