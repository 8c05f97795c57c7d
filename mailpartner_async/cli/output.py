"""What ``mailpartner cancel`` prints: one JSON line per outcome, and the summary.

The outcome lines go to stdout, for ``jq`` and friends; the summary goes to stderr,
after the run, with what a journal skipped from earlier runs.
"""

from __future__ import annotations

import json
from typing import Any

from .. import APIError, BatchProgress, CancelOutcome, Journal

__all__ = ["none_goes_out", "outcome_line", "summary"]


def outcome_line(outcome: CancelOutcome) -> str:
    """One outcome as a JSON object: ``message_id``, ``ok``, ``code``, ``message``, ``error``."""
    record: dict[str, Any] = {"message_id": outcome.message_id, "ok": outcome.ok}
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


def summary(progress: BatchProgress, journal: Journal | None) -> str:
    """The counts of this run, and where the journal is with what it skipped."""
    parts = [f"{progress.cancelled} cancelled now"]
    for label, count in (
        ("already cancelled", progress.already_cancelled),
        ("too late", progress.too_late),
        ("already sent", progress.already_sent),
        ("not found", progress.not_found),
        ("failed", progress.failed),
    ):
        if count:
            parts.append(f"{count} {label}")
    text = f"{', '.join(parts)} (of {progress.done})"
    if journal is not None:
        earlier = journal.previous
        text += f"; journal {journal.path}"
        if earlier.done:
            text += f" ({earlier.done} ids final from earlier runs skipped: {_counts(earlier)})"
    return text


def none_goes_out(progress: BatchProgress) -> bool:
    """True when every id counted was cancelled now or already."""
    return progress.cancelled + progress.already_cancelled == progress.done


def _counts(progress: BatchProgress) -> str:
    pairs = [
        ("cancelled", progress.cancelled),
        ("already cancelled", progress.already_cancelled),
        ("too late", progress.too_late),
        ("already sent", progress.already_sent),
        ("not found", progress.not_found),
        ("failed", progress.failed),
    ]
    return ", ".join(f"{count} {label}" for label, count in pairs if count)
