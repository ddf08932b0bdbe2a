"""The update's inputs read and validated (pure): the district's feed and the published history.

Each takes bytes and returns DataFrames with their validation reports; a failed suite stops with
``ValidationFailed``, drift in the history is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd

from cps_covid.rules import history, merge, migration
from cps_covid.rules.feed import parse_feed
from cps_covid.rules.publish_plan import TOTALS_KEY
from cps_covid.rules.schema import LATITUDE, LEADING_COLUMNS, LONGITUDE, SCHOOL, SCHOOL_ID, TOTALS_COLUMNS
from cps_covid.rules.validation import ValidationReport, stop_on_failures, validate


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
    stop_on_failures(reports)
    rows = parsed.rows.assign(cases=parsed.rows["cases_number"].astype("int64"))
    totals = merge.season_totals_from_rows(rows)
    reports.append(validate(totals, "fresh_totals", name))
    return Feed(parsed.kind, totals, stop_on_failures(reports))


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
    stop_on_failures(reports)
    schools = history.typed_schools(schools, schools_name)
    reports.append(validate(history.school_checks(schools), "history_schools", schools_name))
    if totals_csv is not None:
        totals = history.read_table(totals_csv, totals_name)
        history.require_columns(totals, totals_name, TOTALS_COLUMNS)
        reports.append(validate(history.totals_checks(totals, schools), "history_totals", totals_name))
        if dropped := history.totals_dates_without_a_day_column(totals, schools):
            migrated.append(_dropped_dates_event(dropped, totals_name, schools_name))
    return History(schools, stop_on_failures(reports), migrated)


def _dropped_dates_event(dropped: list[str], totals_name: str, schools_name: str) -> merge.Event:
    """Every date named: a reader of the warning can tell exactly which district days leave ``CPStotals.csv``."""
    detail = (
        f"{totals_name} has {len(dropped)} date(s) that {schools_name} has no day column for: {', '.join(dropped)}. "
        f"They are not carried over: {TOTALS_KEY} is recomputed from the per-school table, which counts no school "
        "on them"
    )
    return merge.Event(merge.Tag.TOTALS_DATES_DROPPED, "*", "DISTRICT", detail)


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
