"""The case archive: each past day's "new cases" page and a per-month index of them (pure).

Replaces the old DynamoDB table and its query Lambda. The front end's archive
calendar (``historical/index.html``) asked that Lambda ``GET ...?date=YYYY-MM``
and read ``{"YYYY-MM-DD": {"cases": "N", "url": "<page URL>"}}``; each month's
answer is now a static object, ``historical/YYYY-MM.json``, with exactly that
body, served and cached by CloudFront like the rest of the site. The calendar's
fetch URL becomes ``https://cpscovid.com/historical/${year}-${fmtMonth}.json``
(docs/front-end.md): no server, database or query to run.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import date

import pandas as pd

from cps_covid.errors import InputError
from cps_covid.rules.labels import date_label
from cps_covid.rules.schema import LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID, HistoryLayout, column_day, day_column

PREFIX = "historical/"
INDEX_TYPE = "application/json"
DAILY_FEED_PREFIX = "data/daily-json/"
_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def page_key(day: date) -> str:
    return f"{PREFIX}{day.isoformat()}-cases.html"


def daily_feed_key(day: date, kind: str) -> str:
    """``data/daily-json/YYYY-MM-DD.json`` for the health API's JSON; a case-list CSV keeps its format."""
    return f"{DAILY_FEED_PREFIX}{day.isoformat()}.{'csv' if kind == 'case-list-csv' else 'json'}"


def daily_feed_type(key: str) -> str:
    """The content type of a ``daily_feed_key``, by the format it kept."""
    return "text/csv; charset=utf-8" if key.endswith(".csv") else "application/json"


@dataclass(frozen=True)
class ArchivedDay:
    day: date
    total_cases: int
    schools: int

    @property
    def key(self) -> str:
        return page_key(self.day)

    @property
    def index_key(self) -> str:
        """``historical/YYYY-MM.json``: the month's index, the old archive query's answer for that month."""
        return month_index_key(self.day)

    def entry(self, site_url: str) -> dict[str, str]:
        """The day's value in its month's index, as the old query returned it (cases as text, absolute URL)."""
        return {"cases": str(self.total_cases), "url": f"{site_url.rstrip('/')}/{self.key}"}


def month_index_key(day: date) -> str:
    return f"{PREFIX}{day:%Y-%m}.json"


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


def page_shows_day(page: bytes, day: date, site_url: str) -> bool:
    """Whether a stored ``newcases.html`` can be archived as the page of ``day``.

    Its title carries the date, and its links are absolute to ``site_url`` (a page
    published before 2026-12 linked ``school.html`` relatively, dead under
    ``historical/``: such a page is rendered again from the history instead).
    """
    found = _TITLE.search(page)
    links_home = f'action="{html.escape(site_url.rstrip("/"))}/index.html"'.encode()
    return found is not None and date_label(day).encode() in found.group(1) and links_home in page


def read_month_index(payload: bytes | None, name: str) -> dict[str, dict]:
    """A month's index as stored: ``{"YYYY-MM-DD": {"cases": "N", "url": "..."}}`` (empty when absent)."""
    if payload is None:
        return {}
    try:
        days = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{name}: not valid JSON ({err}); fix or remove it, then rerun") from None
    if not isinstance(days, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) and "url" in v for k, v in days.items()
    ):
        shape = '{"YYYY-MM-DD": {"cases": "N", "url": "..."}}'
        raise InputError(f"{name}: expected {shape}; fix or remove it, then rerun")
    return days


def month_index_with(payload: bytes | None, archived: ArchivedDay, site_url: str) -> bytes | None:
    """The month's index with the day added (days in order), or ``None`` when the day is already in it."""
    days = read_month_index(payload, archived.index_key)
    if archived.day.isoformat() in days:
        return None
    days[archived.day.isoformat()] = archived.entry(site_url)
    return (json.dumps(dict(sorted(days.items())), indent=1) + "\n").encode()
