"""The vaccination and enrolment update: fetch -> validate -> merge and publish (conditional) -> invalidate.

Daily (``cps-vaccination-update``, 00:10 America/Chicago). It owns three columns
of ``allCpsCovidData.csv`` (``Student_Count``, ``Vax_First_Dose``,
``Vax_Complete``) and the transposed file; the case flow owns everything else
in them and keeps these columns where they are.
"""

from __future__ import annotations

import sys
from contextlib import suppress
from datetime import date

from prefect import flow, tags
from prefect.states import State

from cps_covid.errors import CpsCovidError
from cps_covid.publishing.resources import Resources
from cps_covid.rules import clock, outputs
from cps_covid.rules.season_calendar import SeasonRules
from cps_covid.rules.summary import VaccinationSummary
from cps_covid.settings import ENV_PREFIX, Settings, SettingsError
from tasks.alarms import alarm_now, tell_if_recovered
from tasks.fetch import fetch
from tasks.publish import invalidate_cdn
from tasks.report import cli_outcome, failed_with, report_run, run_name, scheduled_at
from tasks.vaccination import publish_vaccination, validate_vaccination_feed

NEEDED = ("bucket", "distribution_id")


def _run_name() -> str:
    return run_name("vaccination")


def _source(source: str | None, settings: Settings) -> str:
    url = source or settings.vaccination_source_url
    if not url:
        raise SettingsError(
            f"missing setting(s): {ENV_PREFIX}VACCINATION_SOURCE_URL (or the parameter source): "
            "where the vaccination feed is read from"
        )
    return url


@flow(
    name="cps-vaccination-update",
    flow_run_name=_run_name,
    log_prints=True,
    on_failure=[alarm_now],  # type: ignore[list-item]
    on_crashed=[alarm_now],  # type: ignore[list-item]
)
def vaccination_update(as_of: date | None = None, source: str | None = None, dry_run: bool = False) -> dict | State:
    """Put the district's vaccination and enrolment figures into the published per-school table.

    Args:
        as_of: The day the figures are for, YYYY-MM-DD. Empty: the day of the run's scheduled time in the
            configured timezone (``clock.update_day``).
        source: The vaccination feed's URL or path. Empty: the configured vaccination_source_url.
        dry_run: Validate and merge, write nothing.
    """
    try:
        return apply_vaccination(as_of, source, dry_run)
    except CpsCovidError as err:  # logged once, by the task that raised it; the run ends with its words
        return failed_with(err)


def apply_vaccination(as_of: date | None, source: str | None, dry_run: bool) -> dict:
    """The flow's body: fetch, validate, merge and publish, invalidate."""
    settings = Settings.load(require=NEEDED)
    resources = Resources.of(settings)
    as_of = clock.update_day(as_of, scheduled_at(), settings.replay_clock, settings.timezone)
    url = _source(source, settings)

    fetched = fetch(url, settings, name="Fetch the vaccination feed")
    feed = validate_vaccination_feed(
        fetched, None if dry_run else resources.bucket
    )  # its Data Docs page, kept with the run
    summary = VaccinationSummary(as_of=as_of.isoformat(), source=url, source_sha256=fetched.sha256, dry_run=dry_run)
    # the updates it describes are read from the ledger with the table, at each attempt
    calendar = SeasonRules.of(settings.seasons).calendar
    dataset = outputs.Dataset.of(calendar, [], settings.source_url, settings.profile_url)
    summary = publish_vaccination(feed, summary, settings.tags, resources.bucket, dataset)
    if summary.written:
        paths = sorted({f"/{w.key}" for w in summary.written})
        reference = f"vaccination-{summary.as_of}-{summary.written[-1].etag.strip(chr(34))}"
        summary.invalidation_id = invalidate_cdn(paths, reference, resources.cdn)
    report_run(summary)
    with suppress(Exception):  # a notice that could not be sent (its task logged why) does not fail the update
        tell_if_recovered(settings)
    return summary.as_dict()


def run_from_cli(as_of: date | None, source: str | None, dry_run: bool) -> int:
    """``cps-covid vaccination``: the flow with configured settings; prints the summary or why it failed."""
    _source(source, Settings.load(require=NEEDED))  # a configuration error is reported before a flow run exists
    with tags("cps-covid", "vaccination", "cli"):
        state = vaccination_update(as_of=as_of, source=source, dry_run=dry_run, return_state=True)
    return cli_outcome("cps-covid vaccination", state, VaccinationSummary)


if __name__ == "__main__":
    sys.exit(run_from_cli(None, None, "--dry-run" in sys.argv))
