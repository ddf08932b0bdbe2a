"""Ledger entries built in code, for the ledger's and the publication's tests (importable: this folder is on
``sys.path`` through its conftest)."""

from __future__ import annotations

from datetime import UTC, datetime

from cps_covid.rules.ledger import Entry, lease

CLAIMED = datetime(2021, 9, 23, 18, 35, tzinfo=UTC)


def entry(entry_id: str, *, step: str = "claimed", sha256: str = "aa", as_of: str = "2021-09-23", **more) -> Entry:
    return Entry(
        id=entry_id,
        flow_run=f"run-{entry_id}",
        as_of=as_of,
        raw_key=f"raw/{entry_id}.csv",
        sha256=sha256,
        source="http://127.0.0.1/feed.csv",
        fetched_at=CLAIMED.isoformat(),
        claimed_at=CLAIMED.isoformat(),
        lease_until=lease(CLAIMED, 900),
        step=step,
        **more,
    )
