"""What one run reads and writes, built once from the settings and handed to what needs it.

The publication's state machine and the tasks call these directly; the tests hand them the
in-memory set (``local.memory.in_memory``), the flow the configured AWS one (``Resources.of``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

from cps_covid.systems.storage import Storage

if TYPE_CHECKING:
    import pandas as pd

    from cps_covid.settings import Settings


class Cdn(Protocol):
    def invalidate(self, paths: list[str], reference: str) -> str:
        """Invalidate ``paths``; the same ``reference`` never creates a second invalidation. Its id."""
        ...


class Topic(Protocol):
    def publish(self, subject: str, message: str) -> str:
        """One message to everyone subscribed; its id (``AwsCallFailed`` when the topic refused it)."""
        ...


class Heartbeat(Protocol):
    def beat(self) -> str:
        """One datapoint saying a run completed (the watchdog outside Prefect alarms on its absence)."""
        ...


class NoHeartbeat:
    """No watchdog configured (``heartbeat_namespace`` empty)."""

    def beat(self) -> str:
        return "no heartbeat (heartbeat_namespace is empty)"


class SocialChannels(Protocol):
    @property
    def enabled(self) -> bool: ...

    def post(self, changes: pd.DataFrame | None, as_of: date) -> list[str]:
        """Post an update's ``changes`` (``None``: only retry what an earlier run could not post) on each
        enabled channel, once per published page; notes for the run summary. Never raises."""
        ...


class NoSocialChannels:
    """Every channel off (the default)."""

    enabled = False

    def post(self, changes: pd.DataFrame | None, as_of: date) -> list[str]:
        return []


@dataclass(frozen=True)
class Resources:
    """The bucket, the CDN, the subscribers' and the operators' topics, the social channels and the heartbeat of
    one run."""

    bucket: Storage
    cdn: Cdn
    subscribers: Topic
    operators: Topic | None
    """The alarm topic; ``None`` when none is configured (a notice is then only logged)."""
    social: SocialChannels
    heartbeat: Heartbeat

    @classmethod
    def of(cls, settings: Settings) -> Resources:
        """The configured ones on AWS (or the emulator ``AWS_ENDPOINT_URL`` names); the clients are shared."""
        from cps_covid.publishing.social_posts import ConfiguredChannels
        from cps_covid.systems import aws, cloudfront, cloudwatch, s3, sns

        bucket, credentials = s3.bucket_of(settings), settings.aws_credentials_block
        sns_client = aws.client("sns", credentials)
        social = ConfiguredChannels(bucket, settings)
        return cls(
            bucket=bucket,
            cdn=cloudfront.Distribution(aws.client("cloudfront", credentials), settings.distribution_id),
            subscribers=sns.Topic(sns_client, settings.topic_arn),
            operators=sns.Topic(sns_client, settings.alarm_topic_arn) if settings.alarm_topic_arn else None,
            social=social if social.enabled else NoSocialChannels(),
            heartbeat=cloudwatch.Heartbeat(aws.client("cloudwatch", credentials), settings.heartbeat_namespace)
            if settings.heartbeat_namespace
            else NoHeartbeat(),
        )


@dataclass(frozen=True)
class WatchResources:
    """What the feed watch needs: the bucket (its state, the ledger) and its own heartbeat (``WatchPolls``)."""

    bucket: Storage
    heartbeat: Heartbeat

    @classmethod
    def of(cls, settings: Settings) -> WatchResources:
        from cps_covid.systems import aws, cloudwatch, s3

        heartbeat: Heartbeat = NoHeartbeat()
        if settings.heartbeat_namespace:
            client = aws.client("cloudwatch", settings.aws_credentials_block)
            heartbeat = cloudwatch.Heartbeat(client, settings.heartbeat_namespace, cloudwatch.WATCH_METRIC)
        return cls(bucket=s3.bucket_of(settings), heartbeat=heartbeat)
