"""Watch tasks: what the watch knows, the ledger's word on a body, and the change signalled as a Prefect event.

The watch runs every minute on the process pool: nothing here imports pandas or
Great Expectations (``tests/flows/test_watch.py`` checks it in a fresh process).
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from cps_covid.errors import ConcurrentWriteError
from cps_covid.publishing import ledger_store
from cps_covid.rules import watch
from cps_covid.systems.storage import Storage

STATE_TAGS = {"lifecycle": "state"}


@task(name="Read what the watch knows", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def read_watch(bucket: Storage) -> tuple[watch.WatchState, str | None]:
    found = bucket.get(watch.WATCH_KEY)
    return watch.WatchState.parse(found.body if found else None), found.etag if found else None


@task(name="Ask the ledger", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def was_applied(bucket: Storage, sha256: str) -> bool:
    """Whether an update already applied this body (read only when the watch has not seen it applied)."""
    ledger, _ = ledger_store.read(bucket)
    return watch.was_applied(ledger, sha256)


@task(name="Signal the change", cache_policy=NO_CACHE)
def signal_change(state: watch.WatchState) -> str:
    """One ``cps-covid.feed.changed`` event: the update deployment's trigger runs the update, which fetches
    the source itself (the event's payload only names the body, for the run's name and the UI)."""
    event = emit_event(
        event=watch.EVENT,
        resource={"prefect.resource.id": watch.RESOURCE_ID, "prefect.resource.name": "the district's case feed"},
        payload={"sha256": state.sha256, "source": state.source, "etag": state.etag},
    )
    event_id = str(event.id) if event else ""
    get_run_logger().info("Signalled %s (event %s)", watch.EVENT, event_id or "not sent: no events client")
    return event_id


@task(name="Keep what the watch knows", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def keep_watch(bucket: Storage, state: watch.WatchState, etag: str | None) -> None:
    """Written over what this run read: a second watch run that wrote first wins (the next poll reads theirs)."""
    try:
        bucket.put(watch.WATCH_KEY, state.dumps(), content_type="application/json", tags=STATE_TAGS, if_match=etag)
    except ConcurrentWriteError:
        get_run_logger().info("Another watch run wrote %s first: keeping theirs", watch.WATCH_KEY)
