"""Ledger tasks: the raw archive, the claim on an update and its checkpoints (``ledger_store`` on the bucket)."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid import ledger_store
from cps_covid.errors import ConcurrentWriteError
from cps_covid.io import aws, s3
from cps_covid.io.district import Fetched
from cps_covid.ledger import Entry, Ledger, Step
from cps_covid.settings import Settings


def _bucket(settings: Settings) -> s3.Bucket:
    return s3.Bucket(aws.client("s3", settings.aws_credentials_block), settings.bucket)


def raw_key(fetched: Fetched, now: datetime) -> str:
    extension = "json" if fetched.body.lstrip()[:1] in (b"[", b"{") else "csv"
    return f"raw/{now:%Y/%m/%d}/{now:%H%M%S}-{fetched.sha256}.{extension}"


@task(name="Archive the raw payload", retries=3, retry_delay_seconds=[1, 5, 15], cache_policy=NO_CACHE)
def archive_payload(fetched: Fetched, now: datetime, settings: Settings) -> str:
    """Store the payload unchanged and immutable before anything is derived from it."""
    key = raw_key(fetched, now)
    try:
        s3.put_new(
            _bucket(settings),
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
    return ledger_store.read(_bucket(settings))


@task(name="Claim the update", cache_policy=NO_CACHE)
def claim(ledger: Ledger, etag: str | None, entry: Entry, settings: Settings) -> tuple[Ledger, str]:
    """The ledger with ``entry`` in it, written over ``etag``: refused when another run wrote first."""
    claimed = ledger.with_entry(entry)
    new_etag = ledger_store.write(_bucket(settings), claimed, etag)
    get_run_logger().info("Claimed update %s until %s", entry.id, entry.lease_until)
    return claimed, new_etag


@task(name="Record progress", task_run_name="Record progress: {step}", cache_policy=NO_CACHE)
def checkpoint(
    ledger: Ledger, etag: str, entry_id: str, step: Step, settings: Settings, **fields: object
) -> tuple[Ledger, str]:
    advanced = ledger.advanced(entry_id, step, **fields)
    return advanced, ledger_store.write(_bucket(settings), advanced, etag)


@task(name="Release the claim", cache_policy=NO_CACHE)
def release(ledger: Ledger, etag: str, entry_id: str, settings: Settings) -> tuple[Ledger, str]:
    """Drop an entry that wrote nothing (its first write was refused)."""
    released = ledger.without(entry_id)
    return released, ledger_store.write(_bucket(settings), released, etag)
