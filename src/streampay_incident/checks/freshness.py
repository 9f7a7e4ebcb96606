"""Is the clock far ahead of the export? A note, not a finding. Pure.

An export triaged a day after it was taken is judged as if everything in it
had been stuck for a day: every threshold is passed. When ``--now`` was not
given and the newest record is more than :data:`STALE_EXPORT_AFTER` older
than the clock, the report says so (it changes no verdict).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from ..timefmt import format_rfc3339

STALE_EXPORT_AFTER = timedelta(hours=24)


def stale_export_note(record_times: Iterable[datetime], *, now: datetime) -> str | None:
    """The note for an export whose newest record is over 24 h older than ``now``, else None.

    ``record_times``: each record's latest time (a settlement's ``updated_at``
    else ``created_at``, a payout's ``created_at``). No records: no note.
    """
    newest = max(record_times, default=None)
    if newest is None or now - newest <= STALE_EXPORT_AFTER:
        return None
    return (
        f"the newest record ({format_rfc3339(newest)}) is over 24 h older than the clock: "
        "pass --now to judge an old export (as of when it was taken)"
    )
