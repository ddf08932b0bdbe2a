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

from cps_covid.errors import ConcurrentWriteError
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


def put_or_match(
    bucket: Storage, key: str, body: bytes, *, content_type: str, tags: dict[str, str], if_match: str | None = None
) -> Written | None:
    """Write conditionally, or ``None`` when a concurrent writer stored these very bytes first.

    Two runs started together render the same archive page and index: the one that
    loses the conditional write has nothing to add, so it must not fail. Different
    bytes still raise ``ConcurrentWriteError``: nothing of theirs is overwritten.
    """
    try:
        return bucket.put(key, body, content_type=content_type, tags=tags, if_match=if_match)
    except ConcurrentWriteError:
        stored = bucket.get(key)
        if stored is None or stored.body != body:
            raise
        return None
