"""The "new cases" page and the subscribers' message, from a merge result."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pandas as pd

from cps_covid.rules import merge
from cps_covid.rules.labels import SUBJECT_LIMIT, date_label, update_time
from cps_covid.rules.schema import LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID

if TYPE_CHECKING:
    import jinja2


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2  # on the first page rendered, not when the flow is imported

    return jinja2.Environment(
        loader=jinja2.PackageLoader("cps_covid.rules", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _number(value: float) -> str:
    return "" if pd.isna(value) else repr(float(value))


def school_href(site_url: str, name: str, latitude: float, longitude: float) -> str:
    """The dashboard's school page link, as the old page built it, absolute: the same page is archived elsewhere."""
    query = urlencode({"name": name.replace(" ", "_"), "Lat": _number(latitude), "Long": _number(longitude)})
    return f"{site_url.rstrip('/')}/school.html?{query}"


def newcases_page(
    day_cases: pd.DataFrame,
    day: date,
    site_url: str,
    arrivals: Mapping[str, list[tuple[str, int]]] | None = None,
) -> bytes:
    """``day_cases``: School, Latitude, Longitude, CPS_School_ID, cases (the day's cumulative list).

    ``arrivals`` (school id -> (time, cases) per update) says when each school's cases came in.
    """
    arrivals = arrivals or {}
    rows = [
        {
            "name": r[SCHOOL],
            "href": school_href(site_url, r[SCHOOL], r[LATITUDE], r[LONGITUDE]),
            "cases": int(r["cases"]),
            "arrived": ", ".join(f"{when} ({n:+d})" for when, n in arrivals.get(str(r.get(SCHOOL_ID, "")), [])),
        }
        for _, r in day_cases.sort_values(SCHOOL).iterrows()
    ]
    page = (
        _environment()
        .get_template("newcases.html.j2")
        .render(
            date_label=date_label(day),
            rows=rows,
            show_arrivals=any(r["arrived"] for r in rows),
            total_cases=sum(r["cases"] for r in rows),
            corrections=[r["name"] for r in rows if r["cases"] < 0],
            site_url=site_url.rstrip("/"),
        )
    )
    return page.encode("utf-8")


def subject(new_cases: int, day: date) -> str:
    text = f"CPS COVID update: {new_cases} new case{'' if new_cases == 1 else 's'} ({date_label(day)})"
    return text[:SUBJECT_LIMIT]


def season_notice(closed: str, event: str, as_of: date, carry_overs: list[str]) -> tuple[str, str]:
    """The operators' notice when the season calendar closed a season: subject and body (no action needed)."""
    subject = f"cps-covid: the season was closed into {closed} ({date_label(as_of)}), no action needed"
    body = "\n".join(
        [
            f"The update for {date_label(as_of)} found the district's season totals reset and closed the season",
            "by itself, as the season calendar (setting seasons) says:",
            "",
            f"  {event}",
            "",
            f"Carry-over columns now: {', '.join(carry_overs)}.",
            "If this was not a new season (an outage that emptied the feed), roll back with cps-covid rollback",
            "and correct the calendar.",
        ]
    )
    return subject[:SUBJECT_LIMIT], body + "\n"


def message(
    changes: pd.DataFrame,
    day_cases: pd.DataFrame,
    day: date,
    updated_at: datetime,
    site_url: str,
    corrections: Sequence[merge.Event],
) -> str:
    """Plain text for subscribers: this update (with the district's corrections, from the merge's
    ``CORRECTION`` events), then the day's totals so far."""
    site = site_url.rstrip("/").removeprefix("https://").removeprefix("http://")
    lines = [
        "cpscovid.com has detected new COVID-19 cases.",
        "",
        f"Update: {update_time(day, updated_at)}",
        f"New cases: {merge.added_cases(changes)}",
        f"Schools affected: {merge.schools_affected(changes)}",
    ]
    if corrections:
        removed = ", ".join(f"{e.school} ({e.cases})" for e in corrections)
        lines.append(f"Corrections (cases removed by the district): {removed}")
    lines += [
        "",
        f"Cumulative cases reported {date_label(day)}",
        f"New cases: {int(day_cases['cases'].sum())}",
        f"Schools affected: {len(day_cases)}",
        "",
        f"View the list of cases at {site}/newcases.html",
    ]
    return "\n".join(lines) + "\n"
