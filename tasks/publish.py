"""Publishing tasks: S3 objects, the CloudFront invalidation, the SNS summary (thin wrappers of the I/O)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid.publishing.publication import NothingWritten, publish_writes
from cps_covid.rules import publish_plan
from cps_covid.rules.publish_plan import PlannedWrite
from cps_covid.settings import Settings
from cps_covid.systems import aws, cloudfront, s3, sns

__all__ = ["NothingWritten"]  # raised by publish_objects; defined with the state machine


@task(name="Read the published history", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def read_published(settings: Settings) -> dict[str, s3.StoredObject | str | None]:
    """The two tables the merge needs (with their ETags) and the ETags of the other published objects."""
    bucket = s3.bucket_of(settings)
    found: dict[str, s3.StoredObject | str | None] = {}
    for key in (publish_plan.SCHOOLS_KEY, publish_plan.TOTALS_KEY):
        found[key] = bucket.get(key)
    for key in (publish_plan.TRANSPOSED_KEY, publish_plan.PAGE_KEY):
        found[key] = bucket.etag(key)
    return found


@task(name="Publish changed objects", cache_policy=NO_CACHE)
def publish_objects(writes: list[PlannedWrite], tags: dict[str, str], settings: Settings) -> list[s3.Written]:
    return logged(publish_writes(s3.bucket_of(settings), writes, tags), settings)


def logged(written: list[s3.Written], settings: Settings) -> list[s3.Written]:
    """Each object written, in the run's log (the case and the vaccination update alike)."""
    logger = get_run_logger()
    for done in written:
        logger.info("Wrote s3://%s/%s version %s", settings.bucket, done.key, done.version_id)
    return written


@task(name="Invalidate the CDN", retries=3, retry_delay_seconds=5, cache_policy=NO_CACHE)
def invalidate_cdn(paths: list[str], caller_reference: str, settings: Settings) -> str:
    client = aws.client("cloudfront", settings.aws_credentials_block)
    invalidation = cloudfront.invalidate(client, settings.distribution_id, paths, caller_reference)
    get_run_logger().info("Invalidation %s for %s", invalidation, ", ".join(paths))
    return invalidation


@task(name="Notify subscribers", cache_policy=NO_CACHE)
def notify_subscribers(subject: str, message: str, settings: Settings) -> str:
    client = aws.client("sns", settings.aws_credentials_block)
    message_id = sns.publish(client, settings.topic_arn, subject, message)
    get_run_logger().info("Published SNS message %s: %s", message_id, subject)
    return message_id


@task(name="Tell the operators", retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NO_CACHE)
def tell_operators(notice: tuple[str, str], settings: Settings) -> str:
    """A notice on the alarm topic that needs no answer (the season calendar closed a season); logged as well."""
    subject, body = notice
    logger = get_run_logger()
    logger.warning("%s\n%s", subject, body)
    if not settings.alarm_topic_arn:
        return f"operators not mailed (no alarm topic configured): {subject}"
    message_id = sns.publish(aws.client("sns", settings.aws_credentials_block), settings.alarm_topic_arn, subject, body)
    return f"operators told on the alarm topic (message {message_id}): {subject}"


@task(name="Read an archived payload", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def read_archived(key: str, settings: Settings) -> bytes:
    found = s3.bucket_of(settings).get(key)
    if found is None:
        raise FileNotFoundError(f"s3://{settings.bucket}/{key}: the archived payload is missing")
    return found.body
