"""The ledger in a bucket: claim, checkpoints and release are conditional writes (in-memory storage, no server)."""

from __future__ import annotations

import pytest
from test_ledger import entry

from cps_covid import ledger_store
from cps_covid.io.storage import MemoryStorage
from cps_covid.ledger import LEDGER_KEY, Ledger
from cps_covid.ledger_store import UpdateClaimedElsewhere


def test_an_absent_ledger_reads_empty_and_the_first_claim_creates_it() -> None:
    storage = MemoryStorage()
    ledger, etag = ledger_store.read(storage)
    assert (ledger.entries, etag) == ([], None)
    new_etag = ledger_store.claim(storage, ledger, etag, entry("a"))
    stored, stored_etag = ledger_store.read(storage)
    assert [e.id for e in stored.entries] == ["a"] and stored_etag == new_etag


def test_two_runs_that_read_the_same_ledger_cannot_both_claim() -> None:
    storage = MemoryStorage()
    first, etag = ledger_store.read(storage)
    second, same_etag = ledger_store.read(storage)
    ledger_store.claim(storage, first, etag, entry("a"))
    with pytest.raises(UpdateClaimedElsewhere, match="another run changed the ledger first"):
        ledger_store.claim(storage, second, same_etag, entry("b"))
    assert [e.id for e in ledger_store.read(storage)[0].entries] == ["a"]


def test_each_checkpoint_is_written_over_the_last_and_records_its_fields() -> None:
    storage = MemoryStorage()
    ledger, etag = ledger_store.read(storage)
    etag = ledger_store.claim(storage, ledger, etag, entry("a"))
    etag = ledger_store.checkpoint(storage, ledger, etag, "a", "published", versions={"k": "v1"})
    etag = ledger_store.checkpoint(storage, ledger, etag, "a", "invalidated", invalidation_id="I1")
    stored = ledger_store.read(storage)[0].get("a")
    assert (stored.step, stored.versions, stored.invalidation_id) == ("invalidated", {"k": "v1"}, "I1")
    assert len(storage.versions[LEDGER_KEY]) == 3  # claim + two checkpoints, each a new version


def test_a_checkpoint_over_a_stale_etag_is_refused_and_changes_nothing() -> None:
    storage = MemoryStorage()
    ledger, etag = ledger_store.read(storage)
    stale = ledger_store.claim(storage, ledger, etag, entry("a"))
    ledger_store.checkpoint(storage, ledger, stale, "a", "published")
    with pytest.raises(UpdateClaimedElsewhere):
        ledger_store.checkpoint(storage, Ledger([entry("a")]), stale, "a", "notified")
    assert ledger_store.read(storage)[0].get("a").step == "published"


def test_release_drops_only_the_entry_that_wrote_nothing() -> None:
    storage = MemoryStorage()
    ledger, etag = ledger_store.read(storage)
    etag = ledger_store.claim(storage, ledger, etag, entry("a", step="notified"))
    etag = ledger_store.claim(storage, ledger, etag, entry("b"))
    ledger_store.release(storage, ledger, etag, "b")
    assert [e.id for e in ledger_store.read(storage)[0].entries] == ["a"]
