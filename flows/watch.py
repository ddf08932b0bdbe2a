"""The feed watch: is the district's feed changed? If so, one Prefect event; nothing else.

ask the source (conditional GET) -> ask the ledger (only for a body not seen applied) -> signal -> keep state.

It runs every minute on the alerts' process pool (a subprocess, not an ECS task)
and imports neither pandas nor Great Expectations. The update deployment's trigger
(``prefect.yaml``) runs the update on the event; a slow cron stays as the backstop.
Its completed runs are the pipeline's pulse: each puts the watchdog's heartbeat
(``WatchPolls``), and a watch that stops running is alarmed (the ``cps-covid watch
stopped`` automation and the stack's CloudWatch alarm). A failing source fails the
run after the fetch's retries and alarms once per outage; the first run that
completes again sends the recovery notice.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from datetime import UTC, datetime

from prefect import flow
from prefect.context import SyncClientContext
from prefect.states import Completed, State

from cps_covid.errors import CpsCovidError
from cps_covid.publishing.resources import WatchResources
from cps_covid.rules import watch as rule
from cps_covid.settings import Settings
from tasks.alarms import alarm_first_failure, put_heartbeat, tell_if_recovered
from tasks.fetch import fetch
from tasks.report import failed_with
from tasks.watch import keep_watch, read_watch, signal_change, was_applied

WATCH_REQUIRES = ("bucket", "source_url")


@flow(
    name="cps-covid-watch",
    flow_run_name="watch",
    on_failure=[alarm_first_failure],  # type: ignore[list-item]
    on_crashed=[alarm_first_failure],  # type: ignore[list-item]
)
async def watch(source: str | None = None) -> State:
    """Ask the feed whether it changed, and signal a change once.

    Args:
        source: The feed's URL. Empty: the configured source_url (what the update reads).
    """
    with SyncClientContext.get_or_create():
        return watch_once(source)


def run_watch(**parameters: object) -> State:
    """Run the flow from synchronous code (tests, benchmarks) and return its final state."""
    return asyncio.run(watch(**parameters, return_state=True))  # type: ignore[arg-type]


def watch_once(source: str | None) -> State:
    """The flow's body; the run's final message is the verdict (what the UI's run list shows)."""
    try:
        settings = Settings.load(require=WATCH_REQUIRES)
        resources = WatchResources.of(settings)
        bucket = resources.bucket
        known, etag = read_watch(bucket)
        url = source or settings.source_url
        fetched = fetch(url, settings, name="Ask the source", validators=known.validators(url))
        answered = known.answered(
            url,
            not_modified=fetched.not_modified,
            sha256=fetched.sha256,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
        )
        applied = was_applied(bucket, answered.sha256) if answered.needs_ledger else True
        decided = rule.verdict(answered, applied, datetime.now(UTC), settings.watch_window_seconds)
        if decided.signal:
            signal_change(decided.state)
        if decided.state != known:
            keep_watch(bucket, decided.state, etag)
    except CpsCovidError as err:  # logged by the task that raised it; the run ends with its words
        return failed_with(err)
    with suppress(Exception):  # a notice that could not be sent (its task logged why) fails nothing
        tell_if_recovered(settings)
    with suppress(Exception):  # a heartbeat that cannot be put is what the watchdog alarms on
        put_heartbeat(resources.heartbeat)
    return Completed(message=decided.reason)


if __name__ == "__main__":
    run_watch()
