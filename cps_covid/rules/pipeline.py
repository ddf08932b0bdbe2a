"""The steps shared by the flow's tasks and the offline ``cps-covid merge``.

Each step takes bytes or DataFrames and returns DataFrames plus validation
reports; none reads or writes anything, so the flow and the offline command
apply exactly the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

import pandas as pd

from cps_covid.errors import ConcurrentWriteError, GapError, NewSeasonError
from cps_covid.rules import history, merge, migration, render, season
from cps_covid.rules.feed import parse_feed
from cps_covid.rules.ledger import Entry
from cps_covid.rules.publish_plan import (  # noqa: F401 (the keys, also read as pipeline.X)
    DATA_KEYS,
    PAGE_KEY,
    PUBLISHED_KEYS,
    SCHOOLS_KEY,
    TOTALS_KEY,
    TRANSPOSED_KEY,
    md5,
)
from cps_covid.rules.schema import (
    LATITUDE,
    LEADING_COLUMNS,
    LONGITUDE,
    SCHOOL,
    SCHOOL_ID,
    TOTALS_COLUMNS,
    HistoryLayout,
)
from cps_covid.rules.validation import ValidationFailed, ValidationReport, validate
from cps_covid.settings import MAX_GAP_DAYS, SEASON_WINDOW_DAYS

CSV_TYPE = "text/csv; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


def _stop_on_failures(reports: list[ValidationReport]) -> list[ValidationReport]:
    if any(not r.success for r in reports):
        raise ValidationFailed(reports)
    return reports


@dataclass
class Feed:
    kind: str
    totals: pd.DataFrame
    """``CPS_School_ID``, ``season_total``, ``School`` (name from the feed, if any)."""
    reports: list[ValidationReport]


def read_feed(payload: bytes, name: str) -> Feed:
    """Parse either source format, validate its rows and the season totals they add up to."""
    parsed = parse_feed(payload, name)
    reports = [validate(parsed.rows, "fresh_feed", name)]
    _stop_on_failures(reports)
    rows = parsed.rows.assign(cases=parsed.rows["cases_number"].astype("int64"))
    totals = merge.season_totals_from_rows(rows)
    reports.append(validate(totals, "fresh_totals", name))
    return Feed(parsed.kind, totals, _stop_on_failures(reports))


@dataclass
class History:
    schools: pd.DataFrame
    reports: list[ValidationReport]
    events: list[merge.Event] = field(default_factory=list)
    """What bringing an older layout to the current one changed (written with the next update)."""

    @property
    def warnings(self) -> list[str]:
        dropped = [str(e) for e in self.events if e.tag == merge.Tag.TOTALS_DATES_DROPPED]
        return [str(w) for r in self.reports for w in r.warnings] + dropped


def read_history(schools_csv: bytes, totals_csv: bytes | None, names: tuple[str, str]) -> History:
    """Read and validate the published history; drift is a warning, anything else stops."""
    schools_name, totals_name = names
    schools = history.read_table(schools_csv, schools_name)
    schools, migrated = migration.to_current_layout(schools, schools_name)
    history.require_columns(schools, schools_name, LEADING_COLUMNS)
    reports = [validate(history.non_integer_cells(schools), "history_cells", schools_name)]
    _stop_on_failures(reports)
    schools = history.typed_schools(schools, schools_name)
    reports.append(validate(history.school_checks(schools), "history_schools", schools_name))
    if totals_csv is not None:
        totals = history.read_table(totals_csv, totals_name)
        history.require_columns(totals, totals_name, TOTALS_COLUMNS)
        reports.append(validate(history.totals_checks(totals, schools), "history_totals", totals_name))
        if dropped := history.totals_dates_without_a_day_column(totals, schools):
            migrated.append(_dropped_dates_event(dropped, totals_name, schools_name))
    return History(schools, _stop_on_failures(reports), migrated)


def _dropped_dates_event(dropped: list[str], totals_name: str, schools_name: str) -> merge.Event:
    """Every date named: a reader of the warning can tell exactly which district days leave ``CPStotals.csv``."""
    detail = (
        f"{totals_name} has {len(dropped)} date(s) that {schools_name} has no day column for: {', '.join(dropped)}. "
        f"They are not carried over: {TOTALS_KEY} is recomputed from the per-school table, which counts no school "
        "on them"
    )
    return merge.Event(merge.Tag.TOTALS_DATES_DROPPED, "*", "DISTRICT", detail)


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
) -> Publication:
    """Serialise the merged tables, validate them, and render page and message if cases moved.

    ``with_page`` renders the page even when nothing moved (resuming an update whose page was not written).
    """
    schools = result.schools
    totals = merge.district_totals(schools)
    reports = [
        validate(history.school_checks(schools, result.kept_drift), "published_schools", SCHOOLS_KEY),
        validate(history.totals_checks(totals, schools), "published_totals", TOTALS_KEY),
    ]
    _stop_on_failures(reports)
    objects = {
        SCHOOLS_KEY: (history.csv_bytes(schools), CSV_TYPE),
        TOTALS_KEY: (history.csv_bytes(totals), CSV_TYPE),
        TRANSPOSED_KEY: (history.transposed_csv_bytes(schools), CSV_TYPE),
    }
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


def new_school_ids(feed: Feed, schools: pd.DataFrame, ignore_ids: frozenset[str]) -> list[str]:
    """Ids the feed reports that the history has never seen (profiles to look up)."""
    ids = feed.totals[SCHOOL_ID]
    return sorted(set(ids[~ids.isin(schools[SCHOOL_ID]) & ~ids.isin(ignore_ids)]))


def profiles_frame(found: list[dict]) -> pd.DataFrame:
    """School profile answers (``Short_Name``, ``School_Latitude``, ``School_Longitude``) as rows."""
    rows = [
        {
            SCHOOL_ID: str(p[SCHOOL_ID]),
            SCHOOL: str(p["Short_Name"]),
            LATITUDE: pd.to_numeric(cast(Any, p.get("School_Latitude")), errors="coerce"),
            LONGITUDE: pd.to_numeric(cast(Any, p.get("School_Longitude")), errors="coerce"),
        }
        for p in found
    ]
    return pd.DataFrame(rows, columns=[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE])


@dataclass(frozen=True)
class SeasonRules:
    """What a run does at the edges of a school year (from the settings; see ``season``)."""

    calendar: list[season.SeasonStart] = field(default_factory=list)
    window_days: int = SEASON_WINDOW_DAYS
    max_gap_days: int | None = MAX_GAP_DAYS
    """A run this many days or fewer after the history's last day zero-fills the days between; later stops."""

    @classmethod
    def of(
        cls, seasons: str, window_days: int = SEASON_WINDOW_DAYS, max_gap_days: int | None = MAX_GAP_DAYS
    ) -> SeasonRules:
        return cls(season.parse_calendar(seasons), window_days, max_gap_days)


@dataclass(frozen=True)
class Rerun:
    """How a stop message tells the person who ran this to run it again with an option."""

    command: str | None = None
    """``None``: the update flow (a deployment parameter); else the command line that was run."""

    def option(self, flag: str, parameter: str) -> str:
        if self.command is None:
            return f"rerun the update with {parameter} (cps-covid run {flag}, or a custom run in the Prefect UI)"
        return f"rerun {self.command} {flag}"


def check_gap(schools: pd.DataFrame, as_of: date, rules: SeasonRules, rerun: Rerun) -> None:
    """Stop before zero-filling more days than ``rules.max_gap_days`` allows (runs stopped, the source went away)."""
    last = season.last_day(schools)
    if last is None or rules.max_gap_days is None or (as_of - last).days <= rules.max_gap_days:
        return
    gap = (as_of - last).days
    first, end = last + timedelta(days=1), as_of - timedelta(days=1)
    raise GapError(
        f"the history's last day column is {last}, {gap} days before {as_of}: this update would add {gap - 1} "
        f"zero-filled day column(s), {first} to {end}, as days without a case, and put every case reported since "
        f"then on {as_of}. Nothing was written. If the district really reported nothing new in between, "
        f"{rerun.option('--fill-gap', 'fill_gap=true')}; otherwise apply the missing days' feeds first "
        "(one update per day, oldest first)"
    )


def apply(
    feed: Feed,
    history: History,
    as_of: date,
    *,
    profiles: pd.DataFrame | None = None,
    ignore_ids: frozenset[str] = frozenset(),
    new_season: str | None = None,
    rules: SeasonRules | None = None,
    fill_gap: bool = False,
    rerun: Rerun | None = None,
    resumed: bool = False,
) -> merge.MergeResult:
    """The merge with its guards: a gap or a reset stops the run unless confirmed, or the calendar closes the season.

    ``rules``: the season calendar and the gap limit (none: no calendar, no gap
    limit). ``fill_gap``: the operator confirmed a gap. ``rerun`` says, in a stop
    message, how the person who ran this reruns it. ``resumed``: an unfinished
    update is being finished, and the history it reads may already hold the
    column its season close added.
    """
    from cps_covid.rules import outliers

    rules = rules or SeasonRules(max_gap_days=None)
    rerun = rerun or Rerun()
    schools = history.schools
    if not (fill_gap or resumed):
        check_gap(schools, as_of, rules, rerun)
    closing = new_season if new_season and not (resumed and new_season in schools.columns) else None
    by_calendar = None
    if not new_season and season.is_reset(schools, feed.totals):
        found = season.calendar_close(rules.calendar, as_of, rules.window_days)
        message = season.reset_message(schools, feed.totals, rerun.option("--new-season NAME", "new_season=NAME"))
        if found is None:
            raise NewSeasonError(message)
        if found[0] in schools.columns:
            raise NewSeasonError(
                f"{message}. The season calendar would close it into {found[0]}, which the history already has"
            )
        closing, by_calendar = found
    if closing:
        schools = season.close_season(schools, closing)  # refuses a name the history already has
    result = merge.apply_feed(schools, feed.totals, as_of, profiles=profiles, ignore_ids=ignore_ids)
    if closing:
        detail = f"season closed into carry-over column {closing}"
        if by_calendar:
            detail += (
                f" by the season calendar: {by_calendar.name} starts {by_calendar.first_day} and the district's "
                f"totals reset on {as_of}"
            )
        result.events.insert(0, merge.Event(merge.Tag.NEW_SEASON, "*", "DISTRICT", detail))
        result.season_closed = closing
        result.closed_by_calendar = by_calendar is not None
    result.events[:0] = history.events
    result.events += outliers.flag_outliers(result.schools, result.changes, result.day)
    return result


def replay(
    entry: Entry, payload: bytes, schools_csv: bytes, totals_csv: bytes | None, *, resumed: bool = False
) -> merge.MergeResult:
    """What a ledger entry's archived payload gives on a published table, with the entry's own choices
    (profiles, ignored ids, season closed): a resumed update recomputes its objects, a rebuild its table."""
    profiles = pd.DataFrame(entry.profiles, columns=[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE])
    return apply(
        read_feed(payload, entry.raw_key),
        read_history(schools_csv, totals_csv, (SCHOOLS_KEY, TOTALS_KEY)),
        date.fromisoformat(entry.as_of),
        profiles=profiles,
        ignore_ids=frozenset(entry.ignore_ids),
        new_season=entry.new_season,
        resumed=resumed,
    )


def resumed_objects(
    entry: Entry,
    payload: bytes,
    schools_csv: bytes,
    totals_csv: bytes | None,
    arrivals: dict[str, list[tuple[str, int]]],
    site_url: str,
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
    )
    objects = {k: v for k, v in publication.objects.items() if k in entry.objects}
    differing = [k for k, (body, _) in objects.items() if md5(body) != entry.objects[k]]
    if differing or set(objects) != set(entry.objects):
        raise ConcurrentWriteError(
            f"update {entry.id} cannot be resumed: {', '.join(differing) or 'its objects'} would differ from what it "
            "planned, so the published data changed since it was claimed; fix by hand (cps-covid rollback)"
        )
    return objects
