"""The open dataset: the dashboard's per-school table as tidy tables in a Frictionless Data Package, and back (pure).

The dashboard's table is wide (a column per day) because its front end reads it
by position; a reader of the data wants one row per school and day. The tidy
tables hold exactly what the wide table holds, no more and no less, so
``wide_table(tidy_tables(s, calendar))`` writes the same bytes as ``s``: the
package can never tell a different story from the dashboard. What the wide table
derives (the 7/14/21-day windows) is not stored but recomputed by the merge's own
rule (``merge.recompute_windows``).

The column descriptions below are the codebook's single source: ``datapackage.json``
and ``README.md`` are both written from them.
"""

from __future__ import annotations

import bisect
import functools
import io
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cps_covid.rules import history, merge
from cps_covid.rules.merge import Tag
from cps_covid.rules.publish_plan import CSV_TYPE
from cps_covid.rules.schema import (
    ADMINISTRATIVE_ID,
    GTOTAL,
    IDENTITY_COLUMNS,
    LATITUDE,
    LONGITUDE,
    SCHOOL,
    SCHOOL_ID,
    VACCINATION_COLUMNS,
    WINDOWS,
    HistoryLayout,
    front_end_columns,
)
from cps_covid.rules.season_calendar import SeasonStart

if TYPE_CHECKING:
    import jinja2

OPEN_PREFIX = "data/open/"
PACKAGE_KEY = f"{OPEN_PREFIX}datapackage.json"
README_KEY = f"{OPEN_PREFIX}README.md"
ERRATA_COLUMNS = ["update_day", "school_id", "school", "kind", "field", "old", "new", "reason", "update_id"]
PROVENANCE_COLUMNS = ["update_id", "update_day", "fetched_at", "claimed_at", "source", "raw_key", "sha256", "flow_run"]

JSON_TYPE = "application/json; charset=utf-8"
MARKDOWN_TYPE = "text/markdown; charset=utf-8"
PARQUET_TYPE = "application/vnd.apache.parquet"
PACKAGE_NAME = "cps-covid-cases"
LAYOUT_VERSION = "1.0.0"
"""The package's layout, not its data: bumped when a table or column is added, removed, renamed or retyped
(major when a reader's code would break, minor when it only gains something)."""
LICENSE = {
    "name": "CC-BY-4.0",
    "path": "https://creativecommons.org/licenses/by/4.0/",
    "title": "Creative Commons Attribution 4.0",
}
"""For our compilation; the district published the source data publicly and is credited as the source."""
SOURCE_TITLES = {
    "feed": "Chicago Public Schools: COVID-19 case feed",
    "profiles": "Chicago Public Schools: school profiles (names and locations of schools new to the feed)",
}
"""Credited whether or not their addresses are configured (the data is the district's either way)."""
INT64 = np.dtype("int64")
SCHOOL_ID_PATTERN = r"^\d{6}$"

KIND_MEANINGS: dict[Tag, str] = {
    Tag.CORRECTION: "a school's season total went down: the negative difference was applied on the day, as the "
    "district corrected it (it shows as removed_cases in cases.csv)",
    Tag.DRIFT_REPAIR: "total_cases disagreed with the school's days: set to their sum, the difference kept in the "
    "latest carry-over so the season total did not change",
    Tag.DRIFT_KEPT: "total_cases disagrees with the school's days in a history with no carry-over yet: kept as the "
    "district confirmed it; the first season close moves the difference onto its carry-over",
    Tag.MIGRATION: "an older layout of the dashboard's table brought to the current one (a column added, renamed or "
    "moved); no value changed",
    Tag.NEW_SEASON: "the season was closed into a carry-over (by the calendar or by the operator)",
    Tag.SCHOOL_ADDED: "the feed named a school the history lacked: added, with its school profile",
    Tag.SCHOOL_ADDED_WITHOUT_PROFILE: "as school-added, but no profile was found: no coordinates",
    Tag.TOTALS_DATES_DROPPED: "the district totals had dates the per-school table has no column for: not carried "
    "over (district_days is computed from the schools, which count no case on them)",
    Tag.OUTLIER: "a school's new cases stood far above its trailing weeks: flagged, never dropped",
    Tag.DISTRICT_JUMP: "the district's day stood far above its trailing weeks: flagged, never dropped",
}
"""What each errata ``kind`` means (``merge.Tag``'s docstrings, in the package's words)."""


@dataclass(frozen=True)
class Field:
    """One column as Frictionless describes it (``type``: string, integer, number, date or datetime)."""

    name: str
    type: str
    description: str
    unit: str = ""
    required: bool = False
    unique: bool = False
    minimum: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] = ()

    def descriptor(self) -> dict[str, Any]:
        constraints: dict[str, Any] = {}
        if self.required:
            constraints["required"] = True
        if self.unique:
            constraints["unique"] = True
        if self.minimum is not None:
            constraints["minimum"] = self.minimum
        if self.pattern:
            constraints["pattern"] = self.pattern
        if self.enum:
            constraints["enum"] = list(self.enum)
        described = f"{self.description} ({self.unit})" if self.unit else self.description
        out: dict[str, Any] = {"name": self.name, "type": self.type, "description": described}
        return out | ({"constraints": constraints} if constraints else {})


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    description: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()
    school_key: bool = False
    """``school_id`` is a foreign key to ``schools`` (not in ``errata``: its ``*`` names the whole district)."""

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def resource(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"fields": [f.descriptor() for f in self.fields], "missingValues": [""]}
        if self.primary_key:
            schema["primaryKey"] = list(self.primary_key)
        if self.school_key:
            reference = {"resource": "schools", "fields": ["school_id"]}
            schema["foreignKeys"] = [{"fields": ["school_id"], "reference": reference}]
        return {
            "name": self.name,
            "profile": "tabular-data-resource",
            "path": f"{self.name}.csv",
            "title": self.title,
            "description": self.description,
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": schema,
            # frictionless reads Parquet only through pyarrow, which this project leaves out (see _parquet): the
            # Parquet copy is named here, outside what `frictionless validate` checks
            "x_parquet": {"path": f"{self.name}.parquet", "mediatype": PARQUET_TYPE},
        }


def _school_id(description: str, **kwargs: Any) -> Field:
    return Field("school_id", "string", description, pattern=SCHOOL_ID_PATTERN, required=True, **kwargs)


DAY = "the day the district's feed first showed the cases (America/Chicago); before 2021-01-16 the days are a week "
DAY += "apart: the cases first seen in the week ending on this day"

CASES = Table(
    "cases",
    "Cases per school and day",
    "One row per school and day on which the school's count changed: new cases, or cases the district removed.",
    (
        Field("date", "date", DAY, required=True),
        _school_id("the school (schools.school_id)"),
        Field("new_cases", "integer", "cases first reported that day", "cases", required=True, minimum=0),
        Field(
            "removed_cases",
            "integer",
            "cases the district removed that day (a duplicate or a correction: its total went down)",
            "cases",
            required=True,
            minimum=0,
        ),
        Field("season", "string", "the season the day falls in (see the README); empty without a season calendar"),
    ),
    ("date", "school_id"),
    school_key=True,
)
SCHOOLS = Table(
    "schools",
    "Schools",
    "One row per school, in the dashboard's order (by name, ADMINISTRATIVE first).",
    (
        _school_id(
            f"the district's 6-digit school id; {ADMINISTRATIVE_ID} is ADMINISTRATIVE, not a school", unique=True
        ),
        Field("name", "string", "the school's short name, upper case, as the dashboard shows it", required=True),
        Field("latitude", "number", "the school's location (WGS84); empty when no profile was found", "degrees"),
        Field("longitude", "number", "the school's location (WGS84); empty when no profile was found", "degrees"),
        Field(
            "student_count",
            "integer",
            "students enrolled (vaccination feed); empty before it ran",
            "students",
            minimum=0,
        ),
        Field("vax_complete", "integer", "students fully vaccinated; empty before the feed ran", "students", minimum=0),
        Field(
            "vax_first_dose", "integer", "students with a first dose; empty before the feed ran", "students", minimum=0
        ),
        Field(
            "total_cases",
            "integer",
            "all cases since March 2020, as the dashboard publishes it: the sum of the school's new_cases minus "
            "removed_cases but for drift (see errata)",
            "cases",
            required=True,
        ),
        Field("first_case_day", "date", "the first day with new cases; empty when none"),
        Field("last_case_day", "date", "the last day with new cases; empty when none"),
    ),
    ("school_id",),
)
CARRY_OVERS = Table(
    "carry_overs",
    "Cases before each season, per school",
    "Every school's carry-over of every closed season (zeros too): a school's total_cases minus its carry-overs is "
    "the current season's total, the figure the district reports.",
    (
        _school_id("the school (schools.school_id)"),
        Field("carry_over", "string", "the season closed into it (preSY2122: everything before SY2122)", required=True),
        Field("position", "integer", "the order of the carry-overs, oldest first", required=True, minimum=1),
        Field("cases", "integer", "the school's cases in that season and the ones before it", "cases", required=True),
    ),
    ("school_id", "carry_over"),
    school_key=True,
)
DISTRICT_DAYS = Table(
    "district_days",
    "Cases per day, all schools",
    "One row per day of the history (days without cases too), summed over the schools.",
    (
        Field("date", "date", DAY, required=True, unique=True),
        Field("new_cases", "integer", "cases first reported that day", "cases", required=True, minimum=0),
        Field("removed_cases", "integer", "cases the district removed that day", "cases", required=True, minimum=0),
        Field("net_cases", "integer", "new_cases minus removed_cases", "cases", required=True),
        Field("running_total", "integer", "net cases from the first day through this one", "cases", required=True),
    ),
    ("date",),
)
ERRATA = Table(
    "errata",
    "Corrections and repairs",
    "What changed a published value other than new cases, one row per school and update, in order.",
    (
        Field("update_day", "date", "the day of the update that made the change; empty when not from an update"),
        Field(
            "school_id",
            "string",
            "the school, or * for the whole district (so no foreign key to schools)",
            required=True,
            pattern=r"^(\d{6}|\*)$",
        ),
        Field("school", "string", "the school's name (DISTRICT for *)"),
        Field("kind", "string", "what happened (see the README)", required=True, enum=tuple(str(t) for t in Tag)),
        Field("field", "string", "the value it is about (gTotal: total_cases; season total), if one"),
        Field("old", "integer", "the value before", "cases"),
        Field("new", "integer", "the value after", "cases"),
        Field("reason", "string", "what was found and done, in words"),
        Field("update_id", "string", "the update (provenance.update_id), or what the change came from"),
    ),
)
PROVENANCE = Table(
    "provenance",
    "Updates",
    "Every update the data went through: when the district's payload was fetched, where it is kept, its hash.",
    (
        Field("update_id", "string", "the update's id", required=True, unique=True),
        Field("update_day", "date", "the day it updated"),
        Field("fetched_at", "datetime", "when the district's payload was fetched (ISO 8601 with offset)"),
        Field("claimed_at", "datetime", "when the update began publishing (ISO 8601 with offset)"),
        Field("source", "string", "the payload's address"),
        Field("raw_key", "string", "where the raw payload is archived"),
        Field("sha256", "string", "the raw payload's SHA-256 (hex)"),
        Field("flow_run", "string", "the Prefect flow run that made it"),
    ),
    ("update_id",),
)
TABLES = (CASES, SCHOOLS, CARRY_OVERS, DISTRICT_DAYS, ERRATA, PROVENANCE)
VACCINATION_FIELDS = dict(zip(VACCINATION_COLUMNS, ("student_count", "vax_complete", "vax_first_dose"), strict=True))


# --- the tables, both ways -----------------------------------------------------------------------------------------


def season_of(day: date, calendar: list[SeasonStart]) -> str:
    """The season ``day`` falls in: the last one starting on or before it, else ``pre`` + the first one's name
    (the carry-over that closes it is named so: ``season_calendar.calendar_close``); ``""`` without a calendar."""
    starts = sorted(calendar, key=lambda s: s.first_day)
    if not starts:
        return ""
    at = bisect.bisect_right([s.first_day for s in starts], day)
    return starts[at - 1].name if at else f"pre{starts[0].name}"


def tidy_tables(schools: pd.DataFrame, calendar: list[SeasonStart]) -> dict[str, pd.DataFrame]:
    """name -> table: ``cases``, ``schools``, ``carry_overs``, ``district_days``, from a published (typed) table.

    A column that fits none of the published kinds is refused (``ValueError``) rather than dropped: the tables
    must rebuild the dashboard's table exactly. The published tables have none (``schema.front_end_columns``).
    """
    columns = [str(c) for c in schools.columns]
    layout = _checked_layout(columns)
    ids = schools[SCHOOL_ID].astype("str")
    if not ids.is_unique:
        raise ValueError(f"{SCHOOL_ID} repeats: {sorted(set(ids[ids.duplicated()]))[:5]}")
    values = schools[layout.days].to_numpy(dtype=INT64)
    dates = np.array([_iso(d) for d in layout.days], dtype=object)
    seasons = np.array([season_of(date.fromisoformat(d), calendar) for d in dates], dtype=object)
    return {
        "cases": _cases(ids.to_numpy(), values, dates, seasons),
        "schools": _schools(schools, ids, values, dates),
        "carry_overs": _carry_overs(schools, ids, layout.carry_overs),
        "district_days": _district_days(schools, values, dates),
    }


def wide_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The dashboard's per-school table rebuilt from the tidy tables, written by ``history.csv_bytes`` byte for
    byte as the table they came from: rows in the schools table's order, the carry-overs by position, a column
    per day of ``district_days``, the windows recomputed. A vaccination column is there when any school has a
    figure (the vaccination flow writes every school's, 0 when none): an all-empty one is left out."""
    schools, cases, carry = tables["schools"], tables["cases"], tables["carry_overs"]
    ids = pd.Index(schools["school_id"].astype("str"))
    days = [d.replace("-", "") for d in tables["district_days"]["date"].astype("str")]
    values = np.zeros((len(ids), len(days)), dtype=INT64)
    rows = _positions(ids, cases["school_id"].astype("str"), "cases.school_id")
    at = _positions(pd.Index(days), cases["date"].astype("str").str.replace("-", ""), "cases.date")
    values[rows, at] = cases["new_cases"].to_numpy(dtype=INT64) - cases["removed_cases"].to_numpy(dtype=INT64)

    order = carry.drop_duplicates("carry_over").sort_values("position", kind="stable")["carry_over"].tolist()
    carried = np.zeros((len(ids), len(order)), dtype=INT64)
    rows = _positions(ids, carry["school_id"].astype("str"), "carry_overs.school_id")
    carried[rows, _positions(pd.Index(order), carry["carry_over"], "carry_overs")] = carry["cases"].to_numpy(INT64)

    head: dict[str, Any] = {
        SCHOOL: schools["name"].astype("str").to_numpy(),
        LATITUDE: schools["latitude"].to_numpy(dtype="float64"),
        LONGITUDE: schools["longitude"].to_numpy(dtype="float64"),
        SCHOOL_ID: ids.to_numpy(),
    }
    for column, name in VACCINATION_FIELDS.items():
        figures = schools[name].astype("Int64")
        if figures.notna().any():
            head[column] = figures.to_numpy(dtype=INT64) if figures.notna().all() else figures.array
    head |= {w: np.zeros(len(ids), dtype=INT64) for w in WINDOWS}  # placed here, recomputed below
    head[GTOTAL] = schools["total_cases"].to_numpy(dtype=INT64)
    head |= {name: carried[:, i] for i, name in enumerate(order)}
    frame = pd.concat(
        [pd.DataFrame(head).astype({SCHOOL: "str", SCHOOL_ID: "str"}), pd.DataFrame(values, columns=days)], axis=1
    )
    return merge.recompute_windows(frame)


def _checked_layout(columns: list[str]) -> HistoryLayout:
    layout = HistoryLayout.of(columns)
    known = {*IDENTITY_COLUMNS, *VACCINATION_COLUMNS, *WINDOWS, GTOTAL, *layout.carry_overs, *layout.days}
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValueError(
            f"the per-school table has column(s) the open dataset has no place for: {', '.join(unknown)} "
            "(only the published layout is turned into tables, so that they rebuild it exactly)"
        )
    if columns != front_end_columns(columns):
        raise ValueError("the per-school table's columns are not in the published order (schema.front_end_columns)")
    return layout


def _iso(day: str) -> str:
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


def _positions(index: pd.Index, labels: pd.Series, what: str) -> np.ndarray:
    at = index.get_indexer(pd.Index(labels))
    if (at < 0).any():
        raise ValueError(f"{what}: {labels[at < 0].iloc[0]!r} is not in the tables it refers to")
    return at


def _cases(ids: np.ndarray, values: np.ndarray, dates: np.ndarray, seasons: np.ndarray) -> pd.DataFrame:
    rows, at = np.nonzero(values)  # school by school in the table's order, each school's days in date order
    counts = values[rows, at]
    return pd.DataFrame(
        {
            "date": pd.array(dates[at], dtype="str"),
            "school_id": pd.array(ids[rows], dtype="str"),
            "new_cases": np.maximum(counts, 0),
            "removed_cases": np.maximum(-counts, 0),
            "season": pd.array(seasons[at], dtype="str"),
        },
        columns=CASES.columns,
    )


def _schools(schools: pd.DataFrame, ids: pd.Series, values: np.ndarray, dates: np.ndarray) -> pd.DataFrame:
    empty = pd.Series(pd.NA, index=schools.index, dtype="Int64")
    figures = {
        name: (schools[column].astype("Int64") if column in schools else empty).array
        for column, name in VACCINATION_FIELDS.items()
    }
    first, last = _case_days(values, dates)
    return pd.DataFrame(
        {
            "school_id": ids.to_numpy(),
            "name": schools[SCHOOL].astype("str").to_numpy(),
            "latitude": schools[LATITUDE].to_numpy(dtype="float64"),
            "longitude": schools[LONGITUDE].to_numpy(dtype="float64"),
            **figures,
            "total_cases": schools[GTOTAL].to_numpy(dtype=INT64),
            "first_case_day": first,
            "last_case_day": last,
        },
        columns=SCHOOLS.columns,
    )


def _case_days(values: np.ndarray, dates: np.ndarray) -> tuple[Any, Any]:
    """Each school's first and last day with new cases (missing when it has none)."""
    positive = values > 0
    if not positive.shape[1]:
        none = pd.array([None] * len(values), dtype="str")
        return none, none
    found = positive.any(axis=1)
    first = positive.argmax(axis=1)
    last = positive.shape[1] - 1 - positive[:, ::-1].argmax(axis=1)
    days = dates[first], dates[last]  # new object arrays (fancy indexing copies)
    for day in days:
        day[~found] = None
    return pd.array(days[0], dtype="str"), pd.array(days[1], dtype="str")


def _carry_overs(schools: pd.DataFrame, ids: pd.Series, carry_overs: list[str]) -> pd.DataFrame:
    """School by school, each school's carry-overs oldest first: every one, so the columns are known when all
    are zero."""
    count = len(carry_overs)
    return pd.DataFrame(
        {
            "school_id": pd.array(np.repeat(ids.to_numpy(), count), dtype="str"),
            "carry_over": pd.array(np.tile(np.array(carry_overs, dtype=object), len(ids)), dtype="str"),
            "position": np.tile(np.arange(1, count + 1, dtype=INT64), len(ids)),
            "cases": schools[carry_overs].to_numpy(dtype=INT64).ravel(),
        },
        columns=CARRY_OVERS.columns,
    )


def _district_days(schools: pd.DataFrame, values: np.ndarray, dates: np.ndarray) -> pd.DataFrame:
    """``CPStotals.csv``'s daily and running figures (``merge.district_totals``), with new and removed apart."""
    totals = merge.district_totals(schools)
    return pd.DataFrame(
        {
            "date": pd.array(dates, dtype="str"),
            "new_cases": np.maximum(values, 0).sum(axis=0),
            "removed_cases": np.maximum(-values, 0).sum(axis=0),
            "net_cases": totals["daily"].to_numpy(dtype=INT64),
            "running_total": totals["running"].to_numpy(dtype=INT64),
        },
        columns=DISTRICT_DAYS.columns,
    )


# --- the package -----------------------------------------------------------------------------------------------------


def package_objects(
    schools: pd.DataFrame,
    calendar: list[SeasonStart],
    errata: pd.DataFrame,
    provenance: pd.DataFrame,
    last_updated: str,
    sources: Mapping[str, str],
) -> dict[str, tuple[bytes, str]]:
    """key -> (body, content type) for everything under ``data/open/``, the descriptor last.

    The same inputs give the same bytes (no clock is read: ``last_updated`` is the update's time, ``""`` when
    unknown), so an unchanged package is not written again and a resumed update writes what it planned.
    """
    tables = tidy_tables(schools, calendar) | {
        "errata": _typed(errata, ERRATA, "errata"),
        "provenance": _typed(provenance, PROVENANCE, "provenance"),
    }
    objects: dict[str, tuple[bytes, str]] = {}
    for table in TABLES:
        objects[f"{OPEN_PREFIX}{table.name}.csv"] = (history.csv_bytes(tables[table.name]), CSV_TYPE)
        objects[f"{OPEN_PREFIX}{table.name}.parquet"] = (_parquet(tables[table.name]), PARQUET_TYPE)
    days = tables["district_days"]["date"]
    coverage = {"start": days.iloc[0], "end": days.iloc[-1]} if len(days) else {}
    descriptor = _descriptor(last_updated, sources, coverage)
    objects[README_KEY] = (_readme(descriptor, calendar).encode(), MARKDOWN_TYPE)
    objects[PACKAGE_KEY] = ((json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n").encode(), JSON_TYPE)
    return objects


def _typed(frame: pd.DataFrame, table: Table, what: str) -> pd.DataFrame:
    """The errata and provenance tables as given, each column typed as its field says (CSV and Parquet agree)."""
    if list(frame.columns) != table.columns:
        raise ValueError(f"{what}: columns {list(frame.columns)}, expected {table.columns}")
    kinds = {"integer": "Int64", "number": "float64"}
    return frame.astype({f.name: kinds.get(f.type, "str") for f in table.fields})


class _Kept(io.BytesIO):
    """A file that keeps its bytes when fastparquet closes it."""

    body = b""

    def close(self) -> None:
        if not self.closed:
            self.body = self.getvalue()
        super().close()


def _parquet(frame: pd.DataFrame) -> bytes:
    """The table as Parquet, written in memory through fastparquet's own API (its ``open_with`` hook).

    Not pyarrow: it would push the container image over its 600 MB budget (docs/image.md). Not
    ``DataFrame.to_parquet(engine="fastparquet")``: pandas 3 deprecates that engine. fastparquet writes no time
    and only its version as ``created_by``, so the same table gives the same bytes in any process.
    """
    with warnings.catch_warnings():  # fastparquet reads a pandas option pandas 3 deprecates, once, on import
        warnings.filterwarnings("ignore", message=".*'future.infer_string' option is deprecated")
        import fastparquet  # on the first package written, not when the flow is imported

    files: list[_Kept] = []

    def open_with(path: str, mode: str = "wb") -> _Kept:
        files.append(_Kept())
        return files[-1]

    fastparquet.write("table.parquet", frame, compression="ZSTD", write_index=False, open_with=open_with)
    (written,) = files
    return written.body


def _descriptor(last_updated: str, sources: Mapping[str, str], coverage: dict[str, str]) -> dict[str, Any]:
    credited = [
        {"title": SOURCE_TITLES[key]} | ({"path": url} if (url := sources.get(key, "")) else {})
        for key in SOURCE_TITLES
    ]
    credited += [
        {"title": key, "path": url} for key, url in sorted(sources.items()) if key not in SOURCE_TITLES and url
    ]
    return {
        "profile": "tabular-data-package",
        "name": PACKAGE_NAME,
        "title": "COVID-19 cases in Chicago Public Schools, per school and day",
        "description": "The cases Chicago Public Schools reported, per school and day since March 2020, as the CPS "
        "COVID dashboard (cpscovid.com) publishes them, with their corrections and the provenance of every "
        "update; README.md is the codebook.",
        "version": LAYOUT_VERSION,
        "last_updated": last_updated,
        "keywords": ["COVID-19", "Chicago Public Schools", "schools", "cases"],
        "licenses": [dict(LICENSE)],
        "sources": credited,
        **({"temporal": coverage} if coverage else {}),
        "resources": [table.resource() for table in TABLES],
    }


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2  # as render.py: on the first package written, not when the flow is imported

    return jinja2.Environment(
        loader=jinja2.PackageLoader("cps_covid.rules", "templates"),
        autoescape=False,  # Markdown, not HTML
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _readme(descriptor: dict[str, Any], calendar: list[SeasonStart]) -> str:
    starts = sorted(calendar, key=lambda s: s.first_day)
    seasons = [(f"pre{starts[0].name}", f"before {starts[0].first_day}")] if starts else []
    seasons += [(s.name, f"from {s.first_day}") for s in starts]
    return (
        _environment()
        .get_template("open_data_readme.md.j2")
        .render(
            package=descriptor,
            tables=TABLES,
            seasons=seasons,
            kinds=[(str(tag), KIND_MEANINGS[tag]) for tag in Tag],
        )
    )


def read_tables(files: Mapping[str, bytes]) -> dict[str, pd.DataFrame]:
    """The package's CSVs (table name -> the bytes of ``<name>.csv``) read back typed as their schemas say: what
    a reader gets, and what ``wide_table`` takes (the tests rebuild the published table from the published CSVs)."""
    by_name = {t.name: t for t in TABLES}
    kinds = {"integer": "Int64", "number": "float64"}
    tables = {}
    for name, body in files.items():
        fields = by_name[name].fields
        frame = pd.read_csv(io.BytesIO(body), dtype={f.name: kinds.get(f.type, "str") for f in fields})
        tables[name] = frame
    return tables
