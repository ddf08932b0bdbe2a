"""Column layout of the published files, as the dashboard's front end reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import pandas as pd

SCHOOL = "School"
LATITUDE = "Latitude"
LONGITUDE = "Longitude"
SCHOOL_ID = "CPS_School_ID"
WINDOWS = {"7Total": 7, "14Total": 14, "21Total": 21}
GTOTAL = "gTotal"
IDENTITY_COLUMNS = [SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID]
VACCINATION_COLUMNS = ["Student_Count", "Vax_Complete", "Vax_First_Dose"]
"""In the order the front end reads them: rows 3, 4 and 5 of ``newFormatTest.csv`` (``src/schoolgraphs.js``)."""
LEADING_COLUMNS = [*IDENTITY_COLUMNS, *WINDOWS, GTOTAL]
TOTALS_COLUMNS = ["date", "daily", "running", "7DaySum", "7DayAvg", "14DaySum", "14DayAvg"]
ADMINISTRATIVE_ID = "999999"

_DAY = re.compile(r"^\d{8}$")


def is_day_column(name: str) -> bool:
    return bool(_DAY.match(name))


def day_column(day: date) -> str:
    return day.strftime("%Y%m%d")


def column_day(name: str) -> date:
    return pd.Timestamp(name).date()


@dataclass(frozen=True)
class HistoryLayout:
    """Where each kind of column sits in a per-school table.

    Carry-over columns (``preSY2122``, ``SY2122``, ``Summer_22``...) stand between
    ``gTotal`` and the first day column. The vaccination columns are never
    carry-overs nor trailing, wherever a file has them; any other column after
    the day columns is kept there as it is (``trailing``).
    """

    carry_overs: list[str]
    days: list[str]
    trailing: list[str]

    @classmethod
    def of(cls, columns: pd.Index | list[str]) -> HistoryLayout:
        # Index.tolist() returns the labels in one step; iterating an Index walks its array label by label
        labels = tuple(columns.tolist() if isinstance(columns, pd.Index) else columns)
        if not all(isinstance(c, str) for c in labels):
            return cls(*(list(part) for part in _layout(labels)))
        # a merge asks for the layout of the same few hundred columns several times
        return cls(*(list(part) for part in _cached_layout(labels)))


def _layout(columns: tuple) -> tuple[tuple, tuple, tuple]:
    """(carry-overs, days, trailing) of a per-school table's columns."""
    missing = [c for c in LEADING_COLUMNS if c not in columns]
    if missing:
        raise KeyError(f"missing column(s) {', '.join(missing)}")
    rest = tuple(c for c in columns[columns.index(GTOTAL) + 1 :] if c not in VACCINATION_COLUMNS)
    first_day = next((i for i, c in enumerate(rest) if is_day_column(c)), len(rest))
    after = rest[first_day:]
    last_day = max((i for i, c in enumerate(after) if is_day_column(c)), default=-1)
    return rest[:first_day], after[: last_day + 1], after[last_day + 1 :]


_cached_layout = lru_cache(maxsize=8)(_layout)


def front_end_columns(columns: pd.Index | list[str]) -> list[str]:
    """The one column order every file we write has, because the front end reads ``newFormatTest.csv`` by row.

    ``School, Latitude, Longitude, CPS_School_ID``, the vaccination columns once
    the vaccination flow has run, ``7Total, 14Total, 21Total, gTotal``, the
    carry-overs oldest first, the day columns oldest first (the front end takes
    every row after the carry-overs as a day, newest last), then any column of
    an older file that fits none of these, kept rather than lost.
    """
    names = columns.tolist() if isinstance(columns, pd.Index) else list(columns)
    layout = HistoryLayout.of(names)
    vaccination = [c for c in VACCINATION_COLUMNS if c in names]
    placed = [*IDENTITY_COLUMNS, *vaccination, *WINDOWS, GTOTAL, *layout.carry_overs, *sorted(layout.days)]
    known = set(placed) | set(layout.trailing)
    others = [c for c in names if c not in known]
    return [*placed, *others, *layout.trailing]
