"""The update flow: fetch -> validate -> merge -> validate -> publish -> invalidate -> notify."""

from __future__ import annotations

import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

from prefect import flow, tags
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from cps_covid import pipeline
from cps_covid.publish_plan import invalidation_paths, plan_writes
from cps_covid.settings import Settings
from tasks.fetch import fetch_feed, look_up_new_schools
from tasks.merge import merge_feed, render_outputs
from tasks.publish import invalidate_cdn, notify_subscribers, publish_objects, read_published
from tasks.report import RunSummary, report_run
from tasks.validate import validate_feed, validate_history


def _run_name() -> str:
    as_of = flow_run.parameters.get("as_of") or "today"
    suffix = "-dry-run" if flow_run.parameters.get("dry_run") else ""
    return f"update-{as_of}{suffix}"


@flow(name="cps-covid-update", flow_run_name=_run_name, log_prints=True)
def update(as_of: date | None = None, source: str | None = None, dry_run: bool = False) -> dict:
    """Apply what the district published to the dashboard's data, publishing only what changed."""
    settings = Settings.load()
    now = datetime.now(ZoneInfo(settings.timezone))
    as_of = as_of or now.date()
    url = source or settings.source_url

    fetched = fetch_feed.with_options(
        retry_delay_seconds=exponential_backoff(backoff_factor=settings.fetch_backoff_seconds)
    )(url, settings)
    published = read_published(settings)
    schools_obj, totals_obj = published[pipeline.SCHOOLS_KEY], published[pipeline.TOTALS_KEY]
    if schools_obj is None:
        raise FileNotFoundError(f"s3://{settings.bucket}/{pipeline.SCHOOLS_KEY} does not exist: seed the history first")
    feed = validate_feed(fetched)
    history = validate_history(
        schools_obj.body,
        totals_obj.body if totals_obj else None,
        (f"s3://{settings.bucket}/{pipeline.SCHOOLS_KEY}", f"s3://{settings.bucket}/{pipeline.TOTALS_KEY}"),
    )
    new_ids = pipeline.new_school_ids(feed, history.schools, settings.ignore_ids)
    profiles = look_up_new_schools(new_ids, as_of, settings)
    result = merge_feed(history, feed, as_of, profiles, settings.ignore_ids)
    publication = render_outputs(result, as_of, now, settings.site_url)

    etags = {k: (v.etag if hasattr(v, "etag") else v) for k, v in published.items()}
    writes = plan_writes(publication.objects, etags)
    summary = RunSummary(
        as_of=as_of.isoformat(),
        source=url,
        source_sha256=fetched.sha256,
        dry_run=dry_run,
        new_cases=int(result.changes["new_cases"].clip(lower=0).sum()),
        schools_affected=int((result.changes["new_cases"] > 0).sum()),
        changes=result.changes[["School", "CPS_School_ID", "new_cases"]].to_dict("records"),
        planned=[w.key for w in writes],
        subject=publication.subject,
        message=publication.message,
        events=[str(e) for e in result.events],
        warnings=history.warnings,
    )
    if not dry_run and writes:
        tags = dict(settings.tags) | {"as-of": as_of.isoformat(), "source-sha256": fetched.sha256[:16]}
        written = publish_objects(writes, tags, settings)
        summary.written = [{"key": w.key, "version_id": w.version_id, "etag": w.etag} for w in written]
        reference = f"{as_of.isoformat()}-{written[-1].etag.strip(chr(34))}"
        summary.invalidation_id = invalidate_cdn(invalidation_paths(writes), reference, settings)
        if publication.notifies:
            summary.message_id = notify_subscribers(publication.subject, publication.message, settings)
    report_run(summary)
    return summary.as_dict()


def run_from_cli(as_of: date | None, source: str | None, dry_run: bool) -> int:
    """``cps-covid run``: the flow with configured settings; prints the summary or why it failed."""
    Settings.load()  # a configuration error is reported before a flow run is created
    with tags("cps-covid", "cases", "cli"):
        state = update(as_of=as_of, source=source, dry_run=dry_run, return_state=True)
    if not state.is_completed():
        print(f"cps-covid run: the update failed ({state.name}): {state.message}", file=sys.stderr)
        return 1
    print(RunSummary(**state.result()).text())
    return 0


if __name__ == "__main__":
    sys.exit(run_from_cli(None, None, "--dry-run" in sys.argv))
