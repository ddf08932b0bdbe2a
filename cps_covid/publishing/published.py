"""What an update reads of the published set before it merges: the two tables and every object's ETag."""

from __future__ import annotations

from dataclasses import dataclass

from cps_covid.rules.open_data import OPEN_PREFIX
from cps_covid.rules.publish_plan import PAGE_KEY, SCHOOLS_KEY, TOTALS_KEY, TRANSPOSED_KEY
from cps_covid.systems.storage import Storage, StoredObject


@dataclass(frozen=True)
class Published:
    schools: StoredObject | None
    """``allCpsCovidData.csv``; ``None`` before the history was seeded."""
    totals: StoredObject | None
    """``CPStotals.csv``; ``None`` in a history that never had one."""
    etags: dict[str, str | None]
    """Every published key's ETag (``None``: absent): the conditions of the writes the update plans."""


def read(storage: Storage) -> Published:
    """The tables with their bodies, the transposed table and the page by ETag alone (a HEAD each), the open
    dataset's objects by one listing."""
    schools, totals = storage.get(SCHOOLS_KEY), storage.get(TOTALS_KEY)
    etags = {
        SCHOOLS_KEY: schools.etag if schools else None,
        TOTALS_KEY: totals.etag if totals else None,
        TRANSPOSED_KEY: storage.etag(TRANSPOSED_KEY),
        PAGE_KEY: storage.etag(PAGE_KEY),
        **storage.etags(OPEN_PREFIX),
    }
    return Published(schools, totals, etags)
