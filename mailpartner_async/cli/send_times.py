"""Send times as a campaign file writes them: ISO 8601, or a local time in a zone.

A local time the zone's clocks skip (the spring hour) or show twice (the autumn
hour) could mean two instants an hour apart: it is refused, unless ``dst`` says which
to take (``--dst-times earlier|later``). The earlier of the two is the safer one for a
rescue: it starts that message's cancel sooner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as FixedOffset
from typing import Final, Literal, get_args

__all__ = ["DST_CHOICES", "DstChoice", "parse_send_at"]

DstChoice = Literal["refuse", "earlier", "later"]
DST_CHOICES: Final[tuple[str, ...]] = get_args(DstChoice)
ZERO: Final = timedelta()


def parse_send_at(
    text: str, timezone: tzinfo, *, dst: DstChoice = "refuse", line: int | None = None
) -> datetime:
    """An aware send time from ISO 8601; without an offset it is local to ``timezone``.

    Raises ``ValueError`` (naming ``line`` when given) for a text that is no date, and
    for a local time that ``timezone``'s clocks skip or repeat unless ``dst`` picks one.
    """
    where = "" if line is None else f"line {line}: "
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{where}send_at {text.strip()[:40]!r} is not a date: write ISO 8601 "
            "(2026-10-25T02:30:00+02:00) or the provider's 2026-10-25 02:30:00"
        ) from None
    if value.utcoffset() is not None:
        return value
    return _local(value, timezone, dst, where)


def _local(value: datetime, timezone: tzinfo, dst: DstChoice, where: str) -> datetime:
    first = value.replace(tzinfo=timezone, fold=0)
    second = value.replace(tzinfo=timezone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    # As fixed offsets: two datetimes of one zone compare by wall time, fold ignored.
    readings = sorted(when.astimezone(UTC) for when in (first, second))
    if dst != "refuse":
        chosen = readings[0] if dst == "earlier" else readings[1]
        return chosen.astimezone(FixedOffset(chosen.astimezone(timezone).utcoffset() or ZERO))
    skipped = first.astimezone(UTC).astimezone(timezone).replace(tzinfo=None) != value
    what = "does not exist" if skipped else "happens twice"
    why = "the clocks go forward" if skipped else "the clocks go back"
    offsets = " or ".join(_offset(when) for when in (first, second))
    raise ValueError(
        f"{where}send_at {value.isoformat(sep=' ')!r} {what} in {timezone} ({why}): "
        f"write its offset ({offsets}) or pass --dst-times earlier|later"
    )


def _offset(when: datetime) -> str:
    offset = when.utcoffset() or timedelta()
    sign = "-" if offset < timedelta() else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
