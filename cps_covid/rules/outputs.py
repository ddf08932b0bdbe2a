"""What an update publishes (pure): the three CSVs validated, the page, the open dataset, the subscribers' mail,
the operators' season notice; and the same objects rebuilt for a claimed ledger entry that a crashed run left."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import pandas as pd

from cps_covid.errors import ConcurrentWriteError
from cps_covid.rules import history, merge, open_data, render
from cps_covid.rules.applying import replay
from cps_covid.rules.errata import errata_table, provenance_table
from cps_covid.rules.ledger import Entry
from cps_covid.rules.publish_plan import CSV_TYPE, HTML_TYPE, PAGE_KEY, SCHOOLS_KEY, TOTALS_KEY, TRANSPOSED_KEY, md5
from cps_covid.rules.schema import HistoryLayout
from cps_covid.rules.season_calendar import SeasonStart
from cps_covid.rules.validation import ValidationReport, stop_on_failures, validate


@dataclass
class Publication:
    """Everything one update would publish, before comparing with what is there."""

    objects: dict[str, tuple[bytes, str]]
    subject: str | None
    message: str | None
    result: merge.MergeResult
    reports: list[ValidationReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Drift found in the history it was built from (reported, not stopped)."""

    @property
    def notifies(self) -> bool:
        return self.message is not None


@dataclass(frozen=True)
class Dataset:
    """What the open dataset needs beside the merged table: the season calendar (each case's season), the
    updates it describes (errata and provenance; the last one is the update being published) and its sources."""

    calendar: list[SeasonStart]
    entries: list[Entry]
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, calendar: list[SeasonStart], entries: list[Entry], feed_url: str, profile_url: str) -> Dataset:
        return cls(calendar, entries, {"feed": feed_url, "profiles": profile_url})

    def objects(self, schools: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
        last_updated = self.entries[-1].claimed_at if self.entries else ""
        errata, provenance = errata_table(self.entries), provenance_table(self.entries)
        return open_data.package_objects(schools, self.calendar, errata, provenance, last_updated, self.sources)


def notification_subject(result: merge.MergeResult, as_of: date) -> str:
    """The subscribers' subject line: the cases the update adds."""
    return render.subject(result.added_cases, as_of)


def build_publication(
    result: merge.MergeResult,
    as_of: date,
    updated_at: datetime,
    site_url: str,
    *,
    arrivals: dict[str, list[tuple[str, int]]] | None = None,
    with_page: bool = False,
    dataset: Dataset | None = None,
) -> Publication:
    """Serialise the merged tables, validate them, and render page and message if cases moved.

    ``with_page`` renders the page even when nothing moved (resuming an update whose page was not written);
    ``dataset``: the open dataset under ``data/open/`` too.
    """
    schools = result.schools
    totals = merge.district_totals(schools)
    reports = [
        validate(history.school_checks(schools, result.kept_drift), "published_schools", SCHOOLS_KEY),
        validate(history.totals_checks(totals, schools), "published_totals", TOTALS_KEY),
    ]
    stop_on_failures(reports)
    objects = {
        SCHOOLS_KEY: (history.csv_bytes(schools), CSV_TYPE),
        TOTALS_KEY: (history.csv_bytes(totals), CSV_TYPE),
        TRANSPOSED_KEY: (history.transposed_csv_bytes(schools), CSV_TYPE),
    }
    if dataset is not None:
        objects |= dataset.objects(schools)
    subject = message = None
    day_cases = result.day_cases()
    if with_page or not result.changes.empty:
        objects[PAGE_KEY] = (render.newcases_page(day_cases, as_of, site_url, arrivals), HTML_TYPE)
    if not result.changes.empty:
        subject = notification_subject(result, as_of)
        message = render.message(result.changes, day_cases, as_of, updated_at, site_url, result.corrections)
    return Publication(objects, subject, message, result, reports)


def season_notice(result: merge.MergeResult, as_of: date) -> tuple[str, str] | None:
    """The operators' notice (subject, body) when the season calendar closed a season in this update."""
    if not result.closed_by_calendar or result.season_closed is None:
        return None
    closed = next(str(e) for e in result.events if e.tag == merge.Tag.NEW_SEASON)
    carry_overs = HistoryLayout.of(result.schools.columns).carry_overs
    return render.season_notice(result.season_closed, closed, as_of, carry_overs)


def resumed_objects(
    entry: Entry,
    payload: bytes,
    schools_csv: bytes,
    totals_csv: bytes | None,
    arrivals: dict[str, list[tuple[str, int]]],
    site_url: str,
    dataset: Dataset | None = None,
) -> dict[str, tuple[bytes, str]]:
    """The objects a claimed entry planned, rebuilt from its archived payload and what is published now.

    Everything derives from the per-school table, so whether or not that table was
    already written, the same payload gives the same bytes; any difference from the
    MD5s the entry recorded means someone else changed the data, and stops the resume.
    """
    result = replay(entry, payload, schools_csv, totals_csv, resumed=True)
    publication = build_publication(
        result,
        date.fromisoformat(entry.as_of),
        datetime.fromisoformat(entry.claimed_at),
        site_url,
        arrivals=arrivals,
        with_page=PAGE_KEY in entry.objects,
        dataset=dataset if any(k.startswith(open_data.OPEN_PREFIX) for k in entry.objects) else None,
    )
    objects = {k: v for k, v in publication.objects.items() if k in entry.objects}
    differing = [k for k, (body, _) in objects.items() if md5(body) != entry.objects[k]]
    if differing or set(objects) != set(entry.objects):
        raise ConcurrentWriteError(
            f"update {entry.id} cannot be resumed: {', '.join(differing) or 'its objects'} would differ from what it "
            "planned, so the published data changed since it was claimed; fix by hand (cps-covid rollback)"
        )
    return objects
