"""What the ledger, the archive and the publisher need of a bucket.

``s3.Bucket`` is the real one, ``local.memory.MemoryStorage`` the in-memory one of the
tests. Both have S3's conditional writes: ``put`` with ``if_match`` writes only over
that ETag, without it only where nothing is, and a refused write raises
``ConcurrentWriteError``. So the ledger's claim, its checkpoints and a concurrent
writer can be tested in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cps_covid.rules.publish_plan import Written


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    etag: str
    version_id: str | None


class Storage(Protocol):
    def get(self, key: str) -> StoredObject | None:
        """The object with its ETag, ``None`` when there is none."""
        ...

    def put(
        self, key: str, body: bytes, *, content_type: str, tags: dict[str, str], if_match: str | None = None
    ) -> Written:
        """Write only over ``if_match`` or, without it, only where nothing is (else ``ConcurrentWriteError``)."""
        ...

    def put_new(self, key: str, body: bytes, *, content_type: str, metadata: dict[str, str]) -> Written:
        """Write an immutable object (with its metadata): ``ConcurrentWriteError`` if the key exists."""
        ...

    def etag(self, key: str) -> str | None:
        """The object's ETag without its body (S3: a HEAD), ``None`` when there is none."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """The keys under ``prefix``, sorted."""
        ...

    def etags(self, prefix: str) -> dict[str, str]:
        """Key -> ETag of every object under ``prefix`` (S3: one listing, not a HEAD each)."""
        ...
