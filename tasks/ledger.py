"""Ledger tasks: the raw archive and the ledger read (the claim and the checkpoints are ``publication``'s)."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid.errors import ConcurrentWriteError
from cps_covid.publishing import ledger_store
from cps_covid.rules.ledger import Ledger
from cps_covid.systems.district import Fetched
from cps_covid.systems.storage import Storage


def raw_key(fetched: Fetched, now: datetime) -> str:
    extension = "json" if fetched.body.lstrip()[:1] in (b"[", b"{") else "csv"
    return f"raw/{now:%Y/%m/%d}/{now:%H%M%S}-{fetched.sha256}.{extension}"


@task(name="Archive the raw payload", retries=3, retry_delay_seconds=[1, 5, 15], cache_policy=NO_CACHE)
def archive_payload(fetched: Fetched, now: datetime, bucket: Storage) -> str:
    """Store the payload unchanged and immutable before anything is derived from it."""
    key = raw_key(fetched, now)
    content_type = fetched.content_type or "application/octet-stream"
    metadata = {
        "source-url": fetched.url[:1000],
        "fetched-at": fetched.fetched_at.isoformat(),
        "sha256": fetched.sha256,
    }
    try:
        bucket.put_new(key, fetched.body, content_type=content_type, metadata=metadata)
    except ConcurrentWriteError:
        get_run_logger().info("Payload already archived as %s", key)
    return key


@task(name="Read the ledger", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def read_ledger(bucket: Storage) -> tuple[Ledger, str | None]:
    return ledger_store.read(bucket)
