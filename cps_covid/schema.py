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
LEADING_COLUMNS = [SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID, *WINDOWS, GTOTAL]
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
    ``gTotal`` and the first day column; anything after the day columns (the
    vaccination figures of later files) is kept as it is.
    """

    carry_overs: list[str]
    days: list[str]
    trailing: list[str]

    @classmethod
    def of(cls, columns: pd.Index | list[str]) -> HistoryLayout:
        # Index.tolist() returns the labels in one step; iterating an Index walks its array label by label
        columns = tuple(columns.tolist() if isinstance(columns, pd.Index) else columns)
        if not all(isinstance(c, str) for c in columns):
            return cls(*(list(part) for part in _layout(columns)))
        # a merge asks for the layout of the same few hundred columns several times
        return cls(*(list(part) for part in _cached_layout(columns)))


def _layout(columns: tuple) -> tuple[tuple, tuple, tuple]:
    """(carry-overs, days, trailing) of a per-school table's columns."""
    missing = [c for c in LEADING_COLUMNS if c not in columns]
    if missing:
        raise KeyError(f"missing column(s) {', '.join(missing)}")
    rest = columns[columns.index(GTOTAL) + 1 :]
    first_day = next((i for i, c in enumerate(rest) if is_day_column(c)), len(rest))
    after = rest[first_day:]
    last_day = max((i for i, c in enumerate(after) if is_day_column(c)), default=-1)
    return rest[:first_day], after[: last_day + 1], after[last_day + 1 :]


_cached_layout = lru_cache(maxsize=8)(_layout)
