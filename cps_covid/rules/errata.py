"""The open dataset's errata and provenance tables, from the ledger (pure).

Each update records in its ledger entry the corrections, drift repairs and
migrations its merge made (typed ``merge.Event``s, kept as plain records), so the
errata table is the applied entries' records in order, and the provenance table
is the applied entries themselves: rebuilt the same from the ledger at any time,
which is what lets a crashed update's package be resumed byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from cps_covid.rules.ledger import Entry, Ledger
from cps_covid.rules.merge import Event, Tag
from cps_covid.rules.open_data import ERRATA_COLUMNS, PROVENANCE_COLUMNS

ERRATA_TAGS = (Tag.CORRECTION, Tag.DRIFT_REPAIR, Tag.DRIFT_KEPT, Tag.MIGRATION)
"""What a reader must not take for new cases: cases the district removed, totals repaired, layouts migrated.
Outliers are flagged but unchanged, new schools and season closes are not corrections."""


def errata_records(events: Iterable[Event]) -> list[dict]:
    """The events an update keeps in its ledger entry for the errata table (JSON-ready)."""
    return [
        {
            "school_id": e.school_id,
            "school": e.school,
            "kind": str(e.tag),
            "field": e.field or "",
            "old": e.old,
            "new": e.new,
            "reason": e.detail,
        }
        for e in events
        if e.tag in ERRATA_TAGS
    ]


def applied_through(ledger: Ledger, entry: Entry) -> list[Entry]:
    """The updates the package describes once ``entry`` is published: the finished ones not rolled back before
    it, then ``entry`` (being claimed, or resumed: then it is in the ledger already and counted once)."""
    return [*ledger.in_effect(before=entry.id), entry]


def errata_table(entries: Iterable[Entry]) -> pd.DataFrame:
    """Every applied update's errata, in order, each row naming its update."""
    return _errata_frame([{"update_day": e.as_of, **record, "update_id": e.id} for e in entries for record in e.errata])


def errata_of_events(events: Iterable[Event], update_day: str, update_id: str) -> pd.DataFrame:
    """The errata of events that no ledger entry holds (a history folder read by ``cps-covid dataset``)."""
    return _errata_frame([{"update_day": update_day, **r, "update_id": update_id} for r in errata_records(events)])


def _errata_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=ERRATA_COLUMNS).astype({"old": "Int64", "new": "Int64"})


def provenance_table(entries: Iterable[Entry]) -> pd.DataFrame:
    rows = [
        {
            "update_id": e.id,
            "update_day": e.as_of,
            "fetched_at": e.fetched_at,
            "claimed_at": e.claimed_at,
            "source": e.source,
            "raw_key": e.raw_key,
            "sha256": e.sha256,
            "flow_run": e.flow_run,
        }
        for e in entries
    ]
    return pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)
