"""The update flow: fetch -> archive -> validate -> merge -> validate -> publish -> invalidate -> notify.

The ledger (``state/ledger.json``) makes it safe to rerun, to run twice at once
and to kill at any point: a run claims the update before its first write and
records each step; the next run resumes an unfinished update (once its lease
has expired) before it looks at a new feed. See docs/crash-safety.md.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import suppress
from datetime import date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from prefect import flow, tags
from prefect.context import SyncClientContext
from prefect.runtime import flow_run
from prefect.states import Cancelled, State

from cps_covid import clock, pipeline
from cps_covid.errors import AwsCallFailed, CpsCovidError
from cps_covid.io.s3 import StoredObject
from cps_covid.ledger import Entry, Ledger, lease, next_step
from cps_covid.ledger_store import UpdateClaimedElsewhere
from cps_covid.publish_plan import PlannedWrite, invalidation_paths, md5, plan_writes
from cps_covid.settings import Settings
from tasks.alarms import alarm_now, tell_if_recovered
from tasks.archive import archive_previous_day, keep_daily_feed
from tasks.fetch import fetch, look_up_new_schools
from tasks.ledger import archive_payload, checkpoint, claim, read_ledger, release
from tasks.merge import merge_feed, recompute_entry, render_outputs
from tasks.publish import (
    NothingWritten,
    invalidate_cdn,
    notify_subscribers,
    publish_objects,
    read_archived,
    read_published,
    tell_operators,
)
from tasks.report import RunSummary, cli_outcome, failed_with, report_run, run_name
from tasks.social import post_social_summaries
from tasks.validate import validate_feed, validate_history


def _run_name() -> str:
    return run_name("update")


def _etags(published: dict) -> dict[str, str | None]:
    return {k: (v.etag if hasattr(v, "etag") else v) for k, v in published.items()}


def finish(
    ledger: Ledger, etag: str, entry_id: str, writes: list[PlannedWrite], settings: Settings, summary: RunSummary
) -> tuple[Ledger, str]:
    """Take a claimed update through its remaining steps (``ledger.next_step``), recording each as it is done."""
    while (step := next_step(entry := ledger.get(entry_id))) is not None:
        done: dict[str, object] = {}
        if step == "published":
            object_tags = dict(settings.tags) | {"as-of": entry.as_of, "source-sha256": entry.sha256[:16]}
            try:
                written = publish_objects(writes, object_tags, settings)
            except NothingWritten:
                release(ledger, etag, entry_id, settings)
                raise
            summary.written += [{"key": w.key, "version_id": w.version_id, "etag": w.etag} for w in written]
            done["versions"] = entry.versions | {w.key: w.version_id for w in written}
        elif step == "invalidated":
            summary.invalidation_id = done["invalidation_id"] = invalidate_cdn(entry.paths, entry.id, settings)
        elif step == "notifying":  # recorded before the call: a run stopped after it never sends again
            ledger, etag = checkpoint(ledger, etag, entry_id, step, settings)
            try:
                summary.message_id = notify_subscribers(entry.subject or "", entry.message or "", settings)
            except AwsCallFailed:
                checkpoint(ledger, etag, entry_id, "invalidated", settings)  # SNS refused it: the next run sends it
                raise
            step, done = "notified", {"message_id": summary.message_id}
        elif entry.step == "notifying":  # notified, for a run that stopped while sending
            summary.warnings.append(
                f"update {entry.id} stopped while sending its notification: it may not have reached subscribers, "
                "and it is not sent again (never twice)"
            )
        ledger, etag = checkpoint(ledger, etag, entry_id, step, settings, **done)
    return ledger, etag


def resume(ledger: Ledger, etag: str, entry: Entry, settings: Settings, summary: RunSummary) -> tuple[Ledger, str]:
    """Finish an update a crashed run left unfinished, publishing exactly the bytes it planned."""
    writes: list[PlannedWrite] = []
    if entry.step == "claimed":
        published = read_published(settings)
        payload = read_archived(entry.raw_key, settings)
        objects = recompute_entry(entry, payload, published, ledger.arrivals(entry.as_of), settings.site_url)
        writes = plan_writes(objects, _etags(published))
    summary.events.append(f"[resumed] update {entry.id} of run {entry.flow_run} stopped after '{entry.step}'")
    return finish(ledger, etag, entry.id, writes, settings, summary)


@flow(name="cps-covid-update", flow_run_name=_run_name, log_prints=True, on_failure=[alarm_now], on_crashed=[alarm_now])  # type: ignore[list-item]
async def update(
    as_of: date | None = None,
    source: str | None = None,
    dry_run: bool = False,
    new_season: str | None = None,
    fill_gap: bool = False,
) -> dict | State:
    """Apply what the district published to the dashboard's data, publishing only what changed.

    Async only for the engine: Prefect's sync flow engine waits up to a second at
    the end of every run for its heartbeat thread (it sleeps in 1 s steps), the
    async one does not. The tasks stay synchronous and share one API client,
    which an async flow does not open for them (without it each task call opens
    its own, about 55 ms here).

    Args:
        as_of: The day to update, YYYY-MM-DD (America/Chicago). Empty: today. An earlier day is a backfill.
        source: The feed's URL or path. Empty: the configured source_url.
        dry_run: Validate and merge, publish nothing, mail nobody.
        new_season: The district reset its totals outside the season calendar: close the season that ended
            into this new carry-over column first (e.g. SY2223 or Summer_23).
        fill_gap: Confirm that the days since the history's last day column (more than max_gap_days) had no
            new case, and zero-fill them.
    """
    with SyncClientContext.get_or_create():
        return apply_update(as_of, source, dry_run, new_season, fill_gap)


def run_update(**parameters: object) -> State:
    """Run the flow from synchronous code (CLI, demo, tests, benchmarks) and return its final state."""
    return asyncio.run(update(**parameters, return_state=True))  # type: ignore[arg-type]


def apply_update(
    as_of: date | None, source: str | None, dry_run: bool, new_season: str | None, fill_gap: bool = False
) -> dict | State:
    """The flow's body: the update's steps, then, when it completed, the recovery notice if the last run failed."""
    try:
        settings = Settings.load()
        outcome = update_steps(settings, as_of, source, dry_run, new_season, fill_gap)
    except CpsCovidError as err:  # logged once, by the task that raised it; the run ends with its words
        return failed_with(err)
    if not isinstance(outcome, State):
        with suppress(Exception):  # Completed: a notice that could not be sent (its task logged why) fails nothing
            tell_if_recovered(settings)
    return outcome


def update_steps(
    settings: Settings, as_of: date | None, source: str | None, dry_run: bool, new_season: str | None, fill_gap: bool
) -> dict | State:
    """Fetch, validate, merge, publish, invalidate and notify, each step a task."""
    now = datetime.now(ZoneInfo(settings.timezone))
    as_of = as_of or clock.today(settings.replay_clock, now)
    url = source or settings.source_url

    fetched = fetch(url, settings)
    summary = RunSummary(
        as_of=as_of.isoformat(),
        source=url,
        source_sha256=fetched.sha256,
        dry_run=dry_run,
        bucket=settings.bucket,
        site_url=settings.site_url,
    )
    raw_key = "" if dry_run else archive_payload(fetched, now, settings)
    summary.raw_key = raw_key
    ledger, etag = read_ledger(settings)

    unfinished = ledger.unfinished()
    if unfinished is not None and etag is not None and not dry_run:  # an entry was read: the ledger has an ETag
        if not unfinished.lease_expired(now, settings.lease_seconds):
            return Cancelled(
                message=f"update {unfinished.id} of run {unfinished.flow_run} is still being "
                f"published (claimed until {unfinished.lease_until}): this run did nothing"
            )
        ledger, etag = resume(ledger, etag, unfinished, settings, summary)
    if not dry_run:  # a social post an earlier run could not make is retried first (never fails the run)
        summary.events += post_social_summaries(None, as_of, settings)

    applied = ledger.applied(fetched.sha256, as_of.isoformat())
    if applied is not None:
        summary.events.append(f"this payload was already applied for {as_of} by update {applied.id}: nothing to do")
        report_run(summary)
        return summary.as_dict()

    published = read_published(settings)
    schools_obj = cast(StoredObject | None, published[pipeline.SCHOOLS_KEY])
    totals_obj = cast(StoredObject | None, published[pipeline.TOTALS_KEY])
    if schools_obj is None:
        raise FileNotFoundError(f"s3://{settings.bucket}/{pipeline.SCHOOLS_KEY} does not exist: seed the history first")
    keep_docs = None if dry_run else settings  # each validation's Data Docs page, kept with the run
    feed = validate_feed(fetched, keep_docs)
    history = validate_history(
        schools_obj.body,
        totals_obj.body if totals_obj else None,
        (f"s3://{settings.bucket}/{pipeline.SCHOOLS_KEY}", f"s3://{settings.bucket}/{pipeline.TOTALS_KEY}"),
        keep_docs,
    )
    new_ids = pipeline.new_school_ids(feed, history.schools, settings.ignore_ids)
    profiles = look_up_new_schools(new_ids, as_of, settings)
    rules = pipeline.SeasonRules.of(settings.seasons, settings.season_window_days, settings.max_gap_days)
    result = merge_feed(history, feed, as_of, profiles, settings.ignore_ids, new_season, rules, fill_gap)

    changes = result.changes[["School", "CPS_School_ID", "new_cases"]].to_dict("records")
    entry = Entry(
        id=f"{as_of.isoformat()}-{now:%H%M%S}-{fetched.sha256[:8]}",
        flow_run=str(flow_run.id or "local"),
        as_of=as_of.isoformat(),
        raw_key=raw_key,
        sha256=fetched.sha256,
        source=url,
        fetched_at=fetched.fetched_at.isoformat(),
        claimed_at=now.isoformat(),
        lease_until=lease(now, settings.lease_seconds),
        new_season=result.season_closed,
        ignore_ids=sorted(settings.ignore_ids),
        profiles=profiles.to_dict("records"),
        changes=changes,
    )
    arrivals = ledger.with_entry(entry).arrivals(entry.as_of)
    publication = render_outputs(result, as_of, now, settings.site_url, arrivals, settings=keep_docs)

    writes = plan_writes(publication.objects, _etags(published))
    summary.new_cases = result.added_cases
    summary.schools_affected = result.schools_affected
    summary.changes = changes
    summary.planned = [w.key for w in writes]
    summary.subject, summary.message = publication.subject, publication.message
    summary.events += [str(e) for e in result.events]
    summary.warnings = history.warnings
    if dry_run or not writes:
        report_run(summary)
        return summary.as_dict()

    archive_previous_day(history.schools, as_of, settings)  # first run of a new day: keep yesterday's page
    entry.objects = {w.key: md5(w.body) for w in writes}
    entry.paths = invalidation_paths(writes)
    entry.subject, entry.message = publication.subject, publication.message
    try:
        ledger, etag = claim(ledger, etag, entry, settings)
    except UpdateClaimedElsewhere as err:
        return Cancelled(message=f"another run claimed this update first, this run wrote nothing ({err})")
    finish(ledger, etag, entry.id, writes, settings, summary)
    if notice := pipeline.season_notice(result, as_of):  # the calendar closed a season: told, not asked
        summary.events.append(tell_operators(notice, settings))
    keep_daily_feed(fetched, feed.kind, as_of, settings)
    summary.events += post_social_summaries(result.changes if publication.notifies else None, as_of, settings)
    report_run(summary)
    return summary.as_dict()


def run_from_cli(
    as_of: date | None, source: str | None, dry_run: bool, new_season: str | None = None, fill_gap: bool = False
) -> int:
    """``cps-covid run``: the flow with configured settings; prints the summary or why it did not complete."""
    Settings.load()  # a configuration error is reported before a flow run is created
    with tags("cps-covid", "cases", "cli"):
        state = run_update(as_of=as_of, source=source, dry_run=dry_run, new_season=new_season, fill_gap=fill_gap)
    return cli_outcome("cps-covid run", state, RunSummary)


if __name__ == "__main__":
    sys.exit(run_from_cli(None, None, "--dry-run" in sys.argv))
