"""What the ledger, the archive and the publisher need of a bucket, and an in-memory one for the tests.

``s3.Bucket`` is the real one. Both have S3's conditional writes: ``put`` with
``if_match`` writes only over that ETag, without it only where nothing is, and
a refused write raises ``ConcurrentWriteError``. So the ledger's claim, its
checkpoints and a concurrent writer can be tested in milliseconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from cps_covid.errors import ConcurrentWriteError


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    etag: str
    version_id: str | None


@dataclass(frozen=True)
class Written:
    key: str
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

    def keys(self, prefix: str) -> list[str]:
        """The keys under ``prefix``, sorted."""
        ...


@dataclass
class MemoryStorage:
    """A versioned bucket in a dict: every write a new version, ETags as S3 makes them for one-part objects."""

    versions: dict[str, list[StoredObject]] = field(default_factory=dict)

    def get(self, key: str) -> StoredObject | None:
        found = self.versions.get(key)
        return found[-1] if found else None

    def put(
        self, key: str, body: bytes, *, content_type: str, tags: dict[str, str], if_match: str | None = None
    ) -> Written:
        current = self.get(key)
        if (current.etag if current else None) != if_match:
            expected = f"ETag {if_match}" if if_match else "no object"
            raise ConcurrentWriteError(f"memory://{key} changed since it was read (expected {expected})")
        stored = StoredObject(key, body, f'"{hashlib.md5(body).hexdigest()}"', str(len(self.versions.get(key, []))))
        self.versions.setdefault(key, []).append(stored)
        return Written(key, stored.etag, stored.version_id)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.versions if k.startswith(prefix))
