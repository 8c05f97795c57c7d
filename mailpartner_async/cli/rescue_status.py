"""What ``mailpartner rescue status`` prints: the campaign's progress across the fleet.

The human view is a few lines: done and total, the rate and the time left, the
counts by outcome, the workers seen in the last minute and the ids in flight. The
``--json`` view is :meth:`RescueStatus.as_dict` as one JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .output import counts
from .progress import duration

if TYPE_CHECKING:
    from ..redis import RescueStatus

__all__ = ["status_json", "status_lines"]

# The ids in flight listed on one line at most; --json gives all that Redis sent.
SHOWN_IDS = 20


def status_json(status: RescueStatus) -> str:
    """The status as one JSON object, on one line."""
    return json.dumps(status.as_dict(), ensure_ascii=False)


def status_lines(status: RescueStatus) -> list[str]:
    """The status in words, one line per subject."""
    done = status.submitted - status.left
    return [
        f"campaign {status.campaign!r}: {done} of {status.submitted} ids final, "
        f"{status.left} left ({status.in_flight} in flight)",
        _pace(status),
        f"outcomes: {counts(status.final) or 'none yet'}",
        _listed("workers seen in the last minute", len(status.workers), status.workers),
        _listed("in flight", status.in_flight, status.in_flight_ids),
    ]


def _pace(status: RescueStatus) -> str:
    rate = f"rate: {status.rate_per_minute:g} outcomes in the last minute"
    if status.left == 0:
        return f"{rate}; time left: none, every id is final"
    eta = status.eta
    if eta is None:
        return f"{rate}; time left: unknown until ids become final"
    return f"{rate}; time left: about {duration(eta.total_seconds())}"


def _listed(label: str, count: int, names: Sequence[str]) -> str:
    if not count:
        return f"{label}: none"
    shown = names[:SHOWN_IDS]
    more = count - len(shown)
    tail = f" and {more} more" if more > 0 else ""
    return f"{label} ({count}): {', '.join(shown)}{tail}"
