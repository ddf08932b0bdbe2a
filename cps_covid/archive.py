"""The case archive: each past day's "new cases" page and an index of them (pure).

Replaces the old DynamoDB table and its query Lambda. The index is one small
JSON list (a row per day with cases: about 180 rows and 15 KB a school year),
served by CloudFront like the rest of the site; the archive page filters it by
month in the browser (``row.date.startsWith("2021-09")``). A query endpoint
would add a server, a database and their failure modes to answer what one
cached GET and a string prefix answer already.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

import pandas as pd

from cps_covid.errors import InputError
from cps_covid.render import date_label
from cps_covid.schema import LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID, HistoryLayout, column_day, day_column

PREFIX = "historical/"
INDEX_KEY = "historical/index.json"
INDEX_TYPE = "application/json"
DAILY_FEED_PREFIX = "data/daily-json/"
_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def page_key(day: date) -> str:
    return f"{PREFIX}{day.isoformat()}-cases.html"


def daily_feed_key(day: date, kind: str) -> str:
    """``data/daily-json/YYYY-MM-DD.json`` for the health API's JSON; a case-list CSV keeps its format."""
    return f"{DAILY_FEED_PREFIX}{day.isoformat()}.{'csv' if kind == 'case-list-csv' else 'json'}"


def daily_feed_type(kind: str) -> str:
    return "text/csv; charset=utf-8" if kind == "case-list-csv" else "application/json"


@dataclass(frozen=True)
class ArchivedDay:
    day: date
    total_cases: int
    schools: int

    @property
    def key(self) -> str:
        return page_key(self.day)

    def row(self) -> dict[str, object]:
        return {
            "date": self.day.isoformat(),
            "total_cases": self.total_cases,
            "schools": self.schools,
            "url": f"/{self.key}",
        }


def day_to_archive(schools: pd.DataFrame, as_of: date) -> ArchivedDay | None:
    """On the first run of a new day (its column not there yet), the latest day column, if it had new cases.

    The latest day column is "yesterday" unless no run happened for a while; a
    rerun of an earlier day (a backfill) archives nothing.
    """
    layout = HistoryLayout.of(schools.columns)
    if not layout.days or day_column(as_of) in layout.days:
        return None
    last = layout.days[-1]
    if column_day(last) >= as_of:
        return None
    counts = schools[last]
    if not (counts > 0).any():
        return None
    return ArchivedDay(column_day(last), int(counts.sum()), int((counts != 0).sum()))


def day_cases(schools: pd.DataFrame, day: date) -> pd.DataFrame:
    """The day's list as the page shows it: every school with cases in that column."""
    column = day_column(day)
    rows = schools[schools[column] != 0]
    return rows[[SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID, column]].rename(columns={column: "cases"})


def page_shows_day(page: bytes, day: date) -> bool:
    """Whether a stored ``newcases.html`` is the page of ``day`` (its title carries the date)."""
    found = _TITLE.search(page)
    return bool(found) and date_label(day).encode() in found.group(1)


def read_index(payload: bytes | None, name: str = INDEX_KEY) -> list[dict]:
    if payload is None:
        return []
    try:
        rows = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{name}: not valid JSON ({err}); fix or remove it, then rerun") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("date"), str) for r in rows):
        raise InputError(f"{name}: expected a JSON list of rows with a date; fix or remove it, then rerun")
    return rows


def index_with(payload: bytes | None, archived: ArchivedDay) -> bytes | None:
    """The index with the day's row added (sorted by date), or ``None`` when the day is already in it."""
    rows = read_index(payload)
    if any(r["date"] == archived.day.isoformat() for r in rows):
        return None
    rows = sorted([*rows, archived.row()], key=lambda r: r["date"])
    return ("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n").encode()


def month_rows(payload: bytes, month: str) -> list[dict]:
    """What the archive page shows for ``YYYY-MM``: the same prefix filter its script applies."""
    return [r for r in read_index(payload) if r["date"].startswith(f"{month}-")]
