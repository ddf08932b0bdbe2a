"""Publishing tasks: the published set read, the update claimed and taken through its publication.

The publication's state machine (``publishing.publication``) does every write and call itself, on the
run's ``Resources``; these tasks give it Prefect's name, log and artifacts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid.publishing import publication, published
from cps_covid.publishing.resources import Cdn, Resources
from cps_covid.rules.ledger import Entry, Ledger
from cps_covid.rules.publish_plan import PlannedWrite
from cps_covid.systems.storage import Storage
from tasks.social import report_posts


@task(name="Read the published history", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def read_published(bucket: Storage) -> published.Published:
    return published.read(bucket)


@task(name="Publish the update", cache_policy=NO_CACHE)
def publish_update(
    ledger: Ledger,
    etag: str | None,
    entry: Entry,
    writes: list[PlannedWrite],
    tags: Mapping[str, str],
    resources: Resources,
) -> publication.Finished:
    """Claim the update (``UpdateClaimedElsewhere`` when another run wrote the ledger first), then publish it:
    objects, invalidation, mail, and the follow-ups, each step recorded in the ledger once done."""
    logger = get_run_logger()
    ledger, etag = publication.claim(resources.bucket, ledger, etag, entry)
    logger.info("Claimed update %s until %s", entry.id, entry.lease_until)
    finished = publication.finish(ledger, etag, entry.id, writes, tags, resources, logger.info)
    report_posts(finished.notes)
    return finished


@task(name="Finish an unfinished update", cache_policy=NO_CACHE)
def finish_unfinished(
    ledger: Ledger,
    etag: str,
    entry: Entry,
    recompute: Callable[[Entry], list[PlannedWrite]],
    tags: Mapping[str, str],
    resources: Resources,
) -> publication.Finished:
    """The update a crashed run left, from the step it reached (``publication.resume``)."""
    logger = get_run_logger()
    logger.warning("Resuming update %s of run %s, stopped after '%s'", entry.id, entry.flow_run, entry.step)
    finished = publication.resume(ledger, etag, entry, recompute, tags, resources, logger.info)
    report_posts(finished.notes)
    return finished


@task(name="Invalidate the CDN", retries=3, retry_delay_seconds=5, cache_policy=NO_CACHE)
def invalidate_cdn(paths: list[str], caller_reference: str, cdn: Cdn) -> str:
    invalidation = cdn.invalidate(paths, caller_reference)
    get_run_logger().info("Invalidation %s for %s", invalidation, ", ".join(paths))
    return invalidation


@task(name="Read an archived payload", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def read_archived(key: str, bucket: Storage) -> bytes:
    found = bucket.get(key)
    if found is None:
        raise FileNotFoundError(f"{key}: the archived payload is missing")
    return found.body
