"""Whether ``mailpartner cancel`` printed an outcome for every id its batch took.

A batch gives every id it takes exactly one outcome, except the ids its journal
holds as final, which it skips. :class:`OutcomeLedger` stands between the input and
the batch: it counts each id as the batch takes it and each outcome as it is
printed, so a batch that ends without an id's outcome, or before the end of its
input, is caught at the end of the run and never taken for a finished one. It also
counts what the journal held for the ids it passed on (``held``), for the summary
and the exit status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from .. import BatchProgress, CancelOutcome, Journal, ScheduledMessage
from .._core.models import BatchItem
from .journaling import add_held

__all__ = ["OutcomeLedger"]


class OutcomeLedger:
    """The ids of ``items`` as a batch takes them, against the outcomes printed.

    Give the ledger to the batch in place of ``items``, and call :meth:`printed` for
    each outcome line. Only the ids taken and not yet answered are held: without a
    journal, no more than the calls in flight.
    """

    def __init__(self, items: Iterable[BatchItem], journal: Journal | None = None) -> None:
        self._items = items
        self._journal = journal
        self._waiting: Counter[str] = Counter()
        self.held = BatchProgress()
        self.read_to_end = False

    def __iter__(self) -> Iterator[BatchItem]:
        for item in self._items:
            message_id = str(item.message_id if isinstance(item, ScheduledMessage) else item)
            if self._journal is not None:
                self.held = add_held(self.held, self._journal, message_id)
            self._waiting[message_id] += 1
            yield item
        self.read_to_end = True

    def printed(self, outcome: CancelOutcome) -> None:
        """Count ``outcome`` as its id's."""
        self._waiting[outcome.message_id] -= 1
        if self._waiting[outcome.message_id] <= 0:
            del self._waiting[outcome.message_id]

    def unanswered(self, journal: Journal | None) -> int:
        """How many ids taken got no outcome, other than those ``journal`` holds as final."""
        return sum(
            count
            for message_id, count in self._waiting.items()
            if journal is None or not journal.is_final(message_id)
        )

    def unfinished(self, journal: Journal | None) -> str | None:
        """What the batch left undone, in words; None when it did all it had to."""
        unanswered = self.unanswered(journal)
        if unanswered:
            return f"the batch ended without the outcome of {unanswered} of the ids it took"
        if not self.read_to_end:
            return "the batch ended before it had read every id"
        return None
