"""The ledger kept in a bucket (any ``storage.Storage``): read with its ETag, written only over it.

The conditional write is the whole lease: two runs that read the same ledger
cannot both write it, so they can never both believe they hold the update.
A run changes its ledger with ``Ledger``'s pure transitions (``with_entry``,
``advanced``, ``without``) and writes the result here.
"""

from __future__ import annotations

from cps_covid.errors import ConcurrentWriteError
from cps_covid.rules.ledger import LEDGER_KEY, Ledger
from cps_covid.systems.storage import Storage


class UpdateClaimedElsewhere(ConcurrentWriteError):
    """Another run holds (or just took) the ledger: this run must not publish."""


def read(storage: Storage) -> tuple[Ledger, str | None]:
    found = storage.get(LEDGER_KEY)
    return (Ledger.parse(found.body), found.etag) if found else (Ledger(), None)


def write(storage: Storage, ledger: Ledger, etag: str | None) -> str:
    """Conditional on the ETag last read (none: the ledger must not exist yet)."""
    try:
        written = storage.put(
            LEDGER_KEY, ledger.dumps(), content_type="application/json", tags={"lifecycle": "state"}, if_match=etag
        )
    except ConcurrentWriteError as err:
        raise UpdateClaimedElsewhere(f"another run changed the ledger first ({err})") from None
    return written.etag
