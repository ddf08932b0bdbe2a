"""The update flow: fetch -> archive -> claim (resume / already applied) -> validate -> merge -> render ->
publish -> invalidate -> notify -> tell -> keep -> post -> report.

The ledger (``state/ledger.json``) makes it safe to rerun, to run twice at once
and to kill at any point: a run claims the update before it publishes anything
and records each step; the next run resumes an unfinished update (once its lease
has expired) before it looks at a new feed. The steps after the claim are the
state machine of ``cps_covid.publishing.publication``, run with this flow's tasks as its
side effects: the publication (objects, CDN, subscribers' mail) and its
follow-ups (the operators' season notice, the day's raw feed copy, the social
posts), each done once. See docs/crash-safety.md.

Three writes come before the claim, each safe for a run that then claims
nothing, dies, or runs twice:
- the raw archive (``raw/...``): a new key per fetch, written only if absent,
  never served; it must exist before the claim, since a resumed update
  recomputes its objects from it;
- the Data Docs pages (``runs/<flow run id>/validation/...``): under the run's
  own id, written only if absent, a record of the validation, never read as data;
- the previous day's page and its month's index (``historical/``): derived from
  the published history alone, written only if absent (the index only when the
  day is missing from it), so whichever run writes them writes the same day, and
  they must be taken before the update replaces ``newcases.html``.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import suppress
from datetime import date, datetime

from prefect import flow, tags
from prefect.context import SyncClientContext
from prefect.runtime import flow_run
from prefect.states import Cancelled, State

from cps_covid.errors import CpsCovidError
from cps_covid.publishing.ledger_store import UpdateClaimedElsewhere
from cps_covid.publishing.publication import Finished
from cps_covid.publishing.resources import Resources
from cps_covid.rules import archive, clock, inputs, outputs
from cps_covid.rules.errata import applied_through, errata_records
from cps_covid.rules.ledger import Entry, Ledger
from cps_covid.rules.merge import MergeResult
from cps_covid.rules.publish_plan import PlannedWrite, plan_writes, with_the_dashboard
from cps_covid.rules.season_calendar import SeasonRules
from cps_covid.rules.summary import UpdateSummary
from cps_covid.settings import Settings
from tasks.alarms import alarm_now, put_heartbeat, tell_if_recovered
from tasks.archive import archive_previous_day
from tasks.fetch import fetch, look_up_new_schools
from tasks.ledger import archive_payload, read_ledger
from tasks.merge import merge_feed, recompute_entry, render_outputs
from tasks.publish import finish_unfinished, publish_update, read_archived, read_published
from tasks.report import cli_outcome, failed_with, report_run, run_name, scheduled_at
from tasks.social import retry_social_posts
from tasks.validate import validate_feed, validate_history


def _run_name() -> str:
    return run_name("update")


@flow(name="cps-covid-update", flow_run_name=_run_name, log_prints=True, on_failure=[alarm_now], on_crashed=[alarm_now])  # type: ignore[list-item]
async def update(
    as_of: date | None = None,
    source: str | None = None,
    dry_run: bool = False,
    new_season: str | None = None,
    fill_gap: bool = False,
    trigger: str = "",
) -> dict | State:
    """Apply what the district published to the dashboard's data, publishing only what changed.

    Async only for the engine: Prefect's sync flow engine waits up to a second at
    the end of every run for its heartbeat thread (it sleeps in 1 s steps), the
    async one does not. The tasks stay synchronous and share one API client,
    which an async flow does not open for them (without it each task call opens
    its own, about 55 ms here).

    Args:
        as_of: The day to update, YYYY-MM-DD. Empty: the day of the run's scheduled time in the configured
            timezone (``clock.update_day``). An earlier day is a backfill.
        source: The feed's URL or path. Empty: the configured source_url.
        dry_run: Validate and merge, publish nothing, mail nobody.
        new_season: The district reset its totals outside the season calendar: close the season that ended
            into this new carry-over column first (e.g. SY2223 or Summer_23).
        fill_gap: Confirm that the days since the history's last day column (more than max_gap_days) had no
            new case, and zero-fill them.
        trigger: What started the run, for its name only (the feed watch's change, the backstop cron): the run
            reads the source itself, whatever it says.
    """
    with SyncClientContext.get_or_create():
        return apply_update(as_of, source, dry_run, new_season, fill_gap)


def run_update(**parameters: object) -> State:
    """Run the flow from synchronous code (CLI, demo, tests, benchmarks) and return its final state."""
    return asyncio.run(update(**parameters, return_state=True))  # type: ignore[arg-type]


def apply_update(
    as_of: date | None, source: str | None, dry_run: bool, new_season: str | None, fill_gap: bool = False
) -> dict | State:
    """The flow's body: the update's steps; when it completed, the recovery notice if the last run failed and
    the heartbeat the watchdog outside Prefect waits for."""
    try:
        settings = Settings.load()
        resources = Resources.of(settings)
        outcome = update_steps(settings, resources, as_of, source, dry_run, new_season, fill_gap)
    except CpsCovidError as err:  # logged once, by the task that raised it; the run ends with its words
        return failed_with(err)
    if not isinstance(outcome, State):
        with suppress(Exception):  # Completed: a notice that could not be sent (its task logged why) fails nothing
            tell_if_recovered(settings)
        if not dry_run:
            with suppress(Exception):  # a heartbeat that cannot be put is what the watchdog alarms on
                put_heartbeat(resources.heartbeat)
    return outcome


def update_steps(
    settings: Settings,
    resources: Resources,
    as_of: date | None,
    source: str | None,
    dry_run: bool,
    new_season: str | None,
    fill_gap: bool,
) -> dict | State:
    """fetch -> archive -> claim (resume / already applied) -> validate -> merge -> render -> publish ->
    invalidate -> notify -> report, each step a task, on resources built once for the run."""
    now = datetime.now(clock.zone(settings.timezone))
    as_of = clock.update_day(as_of, scheduled_at(), settings.replay_clock, settings.timezone)
    url = source or settings.source_url
    docs_to = None if dry_run else resources.bucket  # each validation's Data Docs page, kept with the run

    fetched = fetch(url, settings)
    summary = UpdateSummary(
        as_of=as_of.isoformat(),
        source=url,
        source_sha256=fetched.sha256,
        dry_run=dry_run,
        bucket=settings.bucket,
        site_url=settings.site_url,
    )
    summary.raw_key = raw_key = "" if dry_run else archive_payload(fetched, now, resources.bucket)

    ledger, etag = read_ledger(resources.bucket)
    if not dry_run:
        resumed = resume_unfinished(ledger, etag, now, settings, resources, summary)
        if isinstance(resumed, State):
            return resumed
        ledger, etag = resumed
        summary.notes += retry_social_posts(as_of, resources)  # a post an earlier run could not make
    if (applied := ledger.applied(fetched.sha256, as_of.isoformat())) is not None:
        return _reported(summary, f"this payload was already applied for {as_of} by update {applied.id}: nothing to do")

    published = read_published(resources.bucket)
    feed = validate_feed(fetched, docs_to)
    history = validate_history(published, settings.bucket, docs_to)
    profiles = look_up_new_schools(inputs.new_school_ids(feed, history.schools, settings.ignore_ids), as_of, settings)
    rules = SeasonRules.of(settings.seasons, settings.season_window_days, settings.max_gap_days)
    result = merge_feed(history, feed, as_of, profiles, settings.ignore_ids, new_season, rules, fill_gap)
    entry = Entry.claiming(
        as_of=as_of,
        now=now,
        flow_run=str(flow_run.id or "local"),
        raw_key=raw_key,
        sha256=fetched.sha256,
        source=url,
        fetched_at=fetched.fetched_at,
        lease_seconds=settings.lease_seconds,
        new_season=result.season_closed,
        ignore_ids=settings.ignore_ids,
        profiles=profiles.to_dict("records"),
        changes=result.changes[["School", "CPS_School_ID", "new_cases"]].to_dict("records"),
        errata=errata_records(result.events),
    )
    arrivals = ledger.arrivals(entry.as_of, extra=entry)
    dataset = open_dataset(ledger, entry, rules, settings)
    planned = render_outputs(result, as_of, now, settings.site_url, arrivals, docs_to=docs_to, dataset=dataset)
    writes = with_the_dashboard(plan_writes(planned.objects, published.etags))
    _planned(summary, result, planned, writes, history.warnings)
    if dry_run or not writes:
        return _reported(summary)

    archive_previous_day(
        history.schools, as_of, settings.site_url, settings.tags, resources
    )  # a new day: keep yesterday's page
    entry = entry.planned(
        writes,
        planned.subject,
        planned.message,
        notice=outputs.season_notice(result, as_of),  # the calendar closed a season: told, not asked
        daily_feed=archive.daily_feed_key(as_of, feed.kind),
        posts=planned.notifies and resources.social.enabled,
    )
    try:
        finished = publish_update(ledger, etag, entry, writes, settings.tags, resources)
    except UpdateClaimedElsewhere as err:
        return Cancelled(message=f"another run claimed this update first, this run wrote nothing ({err})")
    _recorded(summary, finished)
    return _reported(summary)


def resume_unfinished(
    ledger: Ledger, etag: str | None, now: datetime, settings: Settings, resources: Resources, summary: UpdateSummary
) -> tuple[Ledger, str | None] | State:
    """Finish the update a crashed run left, once its lease has expired; ``Cancelled`` while it has not."""
    entry = ledger.unfinished()
    if entry is None or etag is None:  # an entry was read: the ledger has an ETag
        return ledger, etag
    if not entry.lease_expired(now, settings.lease_seconds):
        return Cancelled(
            message=f"update {entry.id} of run {entry.flow_run} is still being "
            f"published (claimed until {entry.lease_until}): this run did nothing"
        )

    def planned_writes(entry: Entry) -> list[PlannedWrite]:  # the same bytes it planned, or it refuses
        published = read_published(resources.bucket)
        payload = read_archived(entry.raw_key, resources.bucket)
        dataset = open_dataset(ledger, entry, SeasonRules.of(settings.seasons), settings)
        objects = recompute_entry(entry, payload, published, ledger.arrivals(entry.as_of), settings.site_url, dataset)
        return plan_writes(objects, published.etags)

    summary.notes.append(f"[resumed] update {entry.id} of run {entry.flow_run} stopped after '{entry.step}'")
    finished = finish_unfinished(ledger, etag, entry, planned_writes, settings.tags, resources)
    return _recorded(summary, finished)


def open_dataset(ledger: Ledger, entry: Entry, rules: SeasonRules, settings: Settings) -> outputs.Dataset:
    """The open dataset as it stands once ``entry`` is published: the updates applied through it."""
    return outputs.Dataset.of(rules.calendar, applied_through(ledger, entry), settings.source_url, settings.profile_url)


def _recorded(summary: UpdateSummary, finished: Finished) -> tuple[Ledger, str]:
    """What the publication did, in the run summary; the ledger and ETag it left."""
    summary.written += finished.written
    summary.invalidation_id = finished.invalidation_id or summary.invalidation_id
    summary.message_id = finished.message_id or summary.message_id
    summary.warnings += finished.warnings
    summary.notes += finished.notes
    return finished.ledger, finished.etag


def _planned(
    summary: UpdateSummary,
    result: MergeResult,
    planned: outputs.Publication,
    writes: list[PlannedWrite],
    warnings: list[str],
) -> None:
    """What the merge found and the update would write, in the run summary."""
    summary.new_cases, summary.schools_affected = result.added_cases, result.schools_affected
    summary.changes = result.changes[["School", "CPS_School_ID", "new_cases"]].to_dict("records")
    summary.planned = [w.key for w in writes]
    summary.subject, summary.message = planned.subject, planned.message
    summary.events += result.events
    summary.warnings += warnings


def _reported(summary: UpdateSummary, note: str | None = None) -> dict:
    if note:
        summary.notes.append(note)
    report_run(summary)
    return summary.as_dict()


def run_from_cli(
    as_of: date | None, source: str | None, dry_run: bool, new_season: str | None = None, fill_gap: bool = False
) -> int:
    """``cps-covid run``: the flow with configured settings; prints the summary or why it did not complete."""
    Settings.load()  # a configuration error is reported before a flow run is created
    with tags("cps-covid", "cases", "cli"):
        state = run_update(as_of=as_of, source=source, dry_run=dry_run, new_season=new_season, fill_gap=fill_gap)
    return cli_outcome("cps-covid run", state, UpdateSummary)


if __name__ == "__main__":
    sys.exit(run_from_cli(None, None, "--dry-run" in sys.argv))
