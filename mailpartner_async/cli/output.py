"""What ``mailpartner cancel`` prints: one JSON line per outcome, and the summary.

The outcome lines go to stdout, for ``jq`` and friends; the summary goes to stderr,
after the run. Its first line says, in words, how many emails will still go out and
why; the second gives this run's counts, with what the journal held from earlier
runs. Both are derived from ``stopped`` (code 200 or code 5), as the exit status is.
"""

from __future__ import annotations

import json
from typing import Any

from .. import APIError, BatchProgress, CancelOutcome, Journal

__all__ = [
    "counts",
    "counts_line",
    "held_line",
    "none_goes_out",
    "nothing_left",
    "outcome_line",
    "summary",
    "verdict",
]

_NOT_STOPPED = (
    ("too late", "too_late"),
    ("already sent", "already_sent"),
    ("not found", "not_found"),
    ("failed", "failed"),
)


def outcome_line(outcome: CancelOutcome) -> str:
    """One outcome as a JSON object: ``message_id``, ``ok``, ``stopped``, ``code``,
    ``message``, ``error``."""
    record: dict[str, Any] = {
        "message_id": outcome.message_id,
        "ok": outcome.ok,
        "stopped": outcome.stopped,
    }
    if outcome.result is not None:
        record |= {
            "code": int(outcome.result.code),
            "message": outcome.result.message,
            "error": None,
        }
    else:
        error = outcome.error
        assert error is not None
        record |= {
            "code": int(error.code) if isinstance(error, APIError) else None,
            "message": str(error),
            "error": type(error).__name__,
        }
    return json.dumps(record, ensure_ascii=False)


def summary(
    progress: BatchProgress,
    journal: Journal | None,
    *,
    held: BatchProgress | None = None,
    never_started: int | None = 0,
) -> str:
    """What will still go out, then the counts of this run and the journal's.

    ``held`` counts what the journal held as final for the ids given (skipped);
    ``never_started`` the ids no request was started for (None: unknown, an input
    not read to its end).
    """
    held = BatchProgress() if held is None else held
    text = counts_line("this run", progress)
    if journal is not None:
        text += f"; journal {journal.path}"
        if held.done:
            text += f" ({held.done} ids final from earlier runs skipped: {counts(held)})"
        if journal.ignored:
            text += f"; {journal.ignored} journal lines not understood were ignored"
    return f"{verdict(progress, held, never_started)}\n{text}"


def counts_line(label: str, progress: BatchProgress) -> str:
    """``label: 8 cancelled now, 1 too late (of 9)``: the counts that are not zero."""
    parts = [f"{progress.cancelled} cancelled now"]
    for name, count in (
        ("already cancelled", progress.already_cancelled),
        *((name, getattr(progress, field)) for name, field in _NOT_STOPPED),
    ):
        if count:
            parts.append(f"{count} {name}")
    return f"{label}: {', '.join(parts)} (of {progress.done})"


def verdict(progress: BatchProgress, held: BatchProgress, never_started: int | None) -> str:
    """How many emails will still go out, and why, in one sentence."""
    reasons = [
        (label, getattr(progress, name) + getattr(held, name)) for label, name in _NOT_STOPPED
    ]
    reasons.append(("never started", never_started or 0))
    going = sum(count for _, count in reasons)
    listed = ", ".join(f"{count} {label}" for label, count in reasons if count)
    if never_started is None:
        listed += (", " if listed else "") + "and the ids not read yet, never started"
        return f"Emails will still go out: {listed}."
    if going:
        return f"{going} {'email' if going == 1 else 'emails'} will still go out: {listed}."
    stopped = progress.stopped + held.stopped
    return f"No email will go out: all {stopped} are stopped (cancelled now or already)."


def held_line(journal: Journal, held: BatchProgress) -> str:
    """What the journal already holds for the ids given, for the plan."""
    return (
        f"the journal {journal.path} already holds {held.done} of these ids as final "
        f"({counts(held)})"
    )


def nothing_left(journal: Journal, held: BatchProgress) -> str:
    """The one line of a rerun whose every id the journal holds as final."""
    return (
        f"nothing left to do: the journal {journal.path} holds all {held.done} ids as final "
        f"({counts(held)}). {verdict(BatchProgress(), held, 0)}"
    )


def none_goes_out(progress: BatchProgress) -> bool:
    """True when every id counted was stopped: cancelled now or already."""
    return progress.going_out == 0


def counts(progress: BatchProgress) -> str:
    """The counts that are not zero, in words: ``3000 cancelled, 269 already sent``."""
    pairs = [
        ("cancelled", progress.cancelled),
        ("already cancelled", progress.already_cancelled),
        ("too late", progress.too_late),
        ("already sent", progress.already_sent),
        ("not found", progress.not_found),
        ("failed", progress.failed),
    ]
    return ", ".join(f"{count} {label}" for label, count in pairs if count)
