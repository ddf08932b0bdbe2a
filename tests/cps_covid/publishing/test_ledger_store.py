"""The ledger in a bucket: every claim, checkpoint and release is a conditional write (in-memory storage)."""

from __future__ import annotations

import pytest
from entries import entry

from cps_covid.publishing import ledger_store
from cps_covid.publishing.ledger_store import UpdateClaimedElsewhere
from cps_covid.rules.ledger import LEDGER_KEY, Ledger
from local.memory import MemoryStorage


def test_an_absent_ledger_reads_empty_and_the_first_claim_creates_it() -> None:
    storage = MemoryStorage()
    ledger, etag = ledger_store.read(storage)
    assert (ledger.entries, etag) == ([], None)
    new_etag = ledger_store.write(storage, ledger.with_entry(entry("a")), etag)
    stored, stored_etag = ledger_store.read(storage)
    assert [e.id for e in stored.entries] == ["a"] and stored_etag == new_etag


def test_two_runs_that_read_the_same_ledger_cannot_both_claim() -> None:
    storage = MemoryStorage()
    first, etag = ledger_store.read(storage)
    second, same_etag = ledger_store.read(storage)
    ledger_store.write(storage, first.with_entry(entry("a")), etag)
    with pytest.raises(UpdateClaimedElsewhere, match="another run changed the ledger first"):
        ledger_store.write(storage, second.with_entry(entry("b")), same_etag)
    assert [e.id for e in ledger_store.read(storage)[0].entries] == ["a"]


def test_each_checkpoint_is_written_over_the_last_and_records_its_fields() -> None:
    storage = MemoryStorage()
    ledger = Ledger().with_entry(entry("a"))
    etag = ledger_store.write(storage, ledger, None)
    ledger = ledger.advanced("a", "published", versions={"k": "v1"})
    etag = ledger_store.write(storage, ledger, etag)
    ledger = ledger.advanced("a", "invalidated", invalidation_id="I1")
    ledger_store.write(storage, ledger, etag)
    stored = ledger_store.read(storage)[0].get("a")
    assert (stored.step, stored.versions, stored.invalidation_id) == ("invalidated", {"k": "v1"}, "I1")
    assert len(storage.versions[LEDGER_KEY]) == 3  # claim + two checkpoints, each a new version


def test_a_checkpoint_over_a_stale_etag_is_refused_and_changes_nothing() -> None:
    storage = MemoryStorage()
    claimed = Ledger().with_entry(entry("a"))
    stale = ledger_store.write(storage, claimed, None)
    ledger_store.write(storage, claimed.advanced("a", "published"), stale)
    with pytest.raises(UpdateClaimedElsewhere):
        ledger_store.write(storage, claimed.advanced("a", "notified"), stale)
    assert ledger_store.read(storage)[0].get("a").step == "published"
