"""Ledger tasks: the raw archive, the claim on an update and its checkpoints.

Thin wrappers: the logic is ``ledger_store`` and ``publication`` on any storage; these run it on the
configured bucket (``s3.bucket_of``), with Prefect's names, retries and logs.
"""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid.errors import ConcurrentWriteError
from cps_covid.publishing import ledger_store, publication
from cps_covid.rules.ledger import Entry, Ledger, Step
from cps_covid.settings import Settings
from cps_covid.systems import s3
from cps_covid.systems.district import Fetched


def raw_key(fetched: Fetched, now: datetime) -> str:
    extension = "json" if fetched.body.lstrip()[:1] in (b"[", b"{") else "csv"
    return f"raw/{now:%Y/%m/%d}/{now:%H%M%S}-{fetched.sha256}.{extension}"


@task(name="Archive the raw payload", retries=3, retry_delay_seconds=[1, 5, 15], cache_policy=NO_CACHE)
def archive_payload(fetched: Fetched, now: datetime, settings: Settings) -> str:
    """Store the payload unchanged and immutable before anything is derived from it."""
    key = raw_key(fetched, now)
    try:
        s3.bucket_of(settings).put_new(
            key,
            fetched.body,
            content_type=fetched.content_type or "application/octet-stream",
            metadata={
                "source-url": fetched.url[:1000],
                "fetched-at": fetched.fetched_at.isoformat(),
                "sha256": fetched.sha256,
            },
        )
    except ConcurrentWriteError:
        get_run_logger().info("Payload already archived as %s", key)
    return key


@task(name="Read the ledger", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def read_ledger(settings: Settings) -> tuple[Ledger, str | None]:
    return ledger_store.read(s3.bucket_of(settings))


@task(name="Claim the update", cache_policy=NO_CACHE)
def claim(ledger: Ledger, etag: str | None, entry: Entry, settings: Settings) -> tuple[Ledger, str]:
    """The ledger with ``entry`` in it, written over ``etag``: refused when another run wrote first."""
    claimed, new_etag = publication.claim(s3.bucket_of(settings), ledger, etag, entry)
    get_run_logger().info("Claimed update %s until %s", entry.id, entry.lease_until)
    return claimed, new_etag


@task(name="Record progress", task_run_name="Record progress: {step}", cache_policy=NO_CACHE)
def checkpoint(
    ledger: Ledger, etag: str, entry_id: str, step: Step, settings: Settings, **fields: object
) -> tuple[Ledger, str]:
    return publication.checkpoint(s3.bucket_of(settings), ledger, etag, entry_id, step, **fields)


@task(name="Release the claim", cache_policy=NO_CACHE)
def release(ledger: Ledger, etag: str, entry_id: str, settings: Settings) -> tuple[Ledger, str]:
    """Drop an entry that wrote nothing (its first write was refused)."""
    return publication.release(s3.bucket_of(settings), ledger, etag, entry_id)
