"""Which objects an update has to write, and under which condition (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SCHOOLS_KEY = "data/allCpsCovidData.csv"
TOTALS_KEY = "data/CPStotals.csv"
TRANSPOSED_KEY = "data/newFormatTest.csv"
PAGE_KEY = "newcases.html"
DATA_KEYS = (SCHOOLS_KEY, TOTALS_KEY, TRANSPOSED_KEY)
"""The three CSVs the front end reads by name."""
PUBLISHED_KEYS = (*DATA_KEYS, PAGE_KEY)
"""What an update publishes, in write order: the per-school table first (the rest derives from it), the page last."""

DESCRIPTOR_NAME = "datapackage.json"
"""The open dataset's descriptor (``open_data.PACKAGE_KEY``): written after the files it describes."""
CSV_TYPE = "text/csv; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class PlannedWrite:
    key: str
    body: bytes
    content_type: str
    if_match: str | None
    """The ETag read before the merge; ``None``: the key must still be absent."""


@dataclass(frozen=True)
class Written:
    """A write the bucket accepted: the key with the ETag and version it now has."""

    key: str
    etag: str
    version_id: str | None


def md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def same_content(body: bytes, etag: str | None) -> bool:
    """A single-part S3 ETag is the MD5 of the body: equal means nothing to write."""
    return etag is not None and md5(body) == etag.strip('"')


def plan_writes(objects: dict[str, tuple[bytes, str]], current: dict[str, str | None]) -> list[PlannedWrite]:
    """Changed objects only: the per-school table first (everything else derives from it), then the page, then
    the open dataset with its descriptor last (it never names files that are not written yet)."""
    writes = [
        PlannedWrite(key, body, content_type, current.get(key))
        for key, (body, content_type) in objects.items()
        if not same_content(body, current.get(key))
    ]
    return sorted(writes, key=_write_order)


def _write_order(write: PlannedWrite) -> tuple[int, bool, str]:
    known = PUBLISHED_KEYS.index(write.key) if write.key in PUBLISHED_KEYS else len(PUBLISHED_KEYS)
    return known, write.key.endswith(DESCRIPTOR_NAME), write.key


def with_the_dashboard(writes: list[PlannedWrite]) -> list[PlannedWrite]:
    """A new update's writes, or none when the dashboard's files do not change: the open dataset is written with
    an update, never alone (its provenance table names the update that wrote it)."""
    return writes if any(w.key in PUBLISHED_KEYS for w in writes) else []


def invalidation_paths(writes: list[PlannedWrite]) -> list[str]:
    return [f"/{w.key}" for w in writes]
