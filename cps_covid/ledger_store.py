"""The ledger kept in a bucket (any ``storage.Storage``): read with its ETag, written only over it.

The conditional write is the whole lease: two runs that read the same ledger
cannot both write it, so they can never both believe they hold the update.
The functions update the ``Ledger`` they are given, as the run's copy of what
it just wrote, and return the new ETag.
"""

from __future__ import annotations

from cps_covid.errors import ConcurrentWriteError
from cps_covid.io.storage import Storage
from cps_covid.ledger import LEDGER_KEY, Entry, Ledger, Step


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


def claim(storage: Storage, ledger: Ledger, etag: str | None, entry: Entry) -> str:
    ledger.entries.append(entry)
    return write(storage, ledger, etag)


def checkpoint(storage: Storage, ledger: Ledger, etag: str, entry_id: str, step: Step, **fields: object) -> str:
    current = ledger.get(entry_id)
    current.step = step
    for name, value in fields.items():
        setattr(current, name, value)
    return write(storage, ledger, etag)


def release(storage: Storage, ledger: Ledger, etag: str, entry_id: str) -> str:
    """Drop an entry that wrote nothing (its first write was refused)."""
    ledger.entries = [e for e in ledger.entries if e.id != entry_id]
    return write(storage, ledger, etag)
