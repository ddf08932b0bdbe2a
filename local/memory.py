"""The run's resources in memory: a versioned bucket, a CDN and topics with the behaviour of S3, CloudFront and
SNS that the publication relies on, so its every crash boundary is tested in milliseconds (never in the image)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cps_covid.errors import AwsCallFailed, ConcurrentWriteError
from cps_covid.publishing.resources import NoSocialChannels, Resources, SocialChannels
from cps_covid.rules.publish_plan import Written
from cps_covid.systems.storage import StoredObject


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

    def put_new(self, key: str, body: bytes, *, content_type: str, metadata: dict[str, str]) -> Written:
        return self.put(key, body, content_type=content_type, tags={})

    def etag(self, key: str) -> str | None:
        found = self.get(key)
        return found.etag if found else None

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.versions if k.startswith(prefix))

    def etags(self, prefix: str) -> dict[str, str]:
        return {k: v[-1].etag for k, v in sorted(self.versions.items()) if k.startswith(prefix)}


@dataclass
class MemoryCdn:
    """CloudFront's invalidations: the same caller reference returns the same one, never a second."""

    by_reference: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    def invalidate(self, paths: list[str], reference: str) -> str:
        self.calls += 1
        return self.by_reference.setdefault(reference, f"I{len(self.by_reference) + 1}")


@dataclass
class MemoryTopic:
    """An SNS topic: every publish is a message sent; ``refuse`` makes the call fail outright."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    refuse: bool = False

    def publish(self, subject: str, message: str) -> str:
        if self.refuse:
            raise AwsCallFailed("SNS Publish to arn:aws:sns:us-east-1:123456789012:cps failed: Throttling")
        self.sent.append((subject, message))
        return f"M{len(self.sent)}"


@dataclass
class MemoryHeartbeat:
    """A CloudWatch metric: the number of datapoints put."""

    beats: int = 0

    def beat(self) -> str:
        self.beats += 1
        return f"heartbeat {self.beats}"


def in_memory(
    bucket: MemoryStorage | None = None, operators: MemoryTopic | None = None, social: SocialChannels | None = None
) -> Resources:
    """A bucket, a CDN, the subscribers' and the operators' topics, no social channel and a heartbeat, in memory."""
    return Resources(
        bucket=bucket or MemoryStorage(),
        cdn=MemoryCdn(),
        subscribers=MemoryTopic(),
        operators=operators or MemoryTopic(),
        social=social or NoSocialChannels(),
        heartbeat=MemoryHeartbeat(),
    )
