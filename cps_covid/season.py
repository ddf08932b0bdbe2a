"""Seasons: noticing that the district's totals were reset, and closing a season (pure)."""

from __future__ import annotations

import re

import pandas as pd

from cps_covid.errors import InputError, NewSeasonError
from cps_covid.schema import GTOTAL, HistoryLayout

RESET_SHARE = 0.2
"""Feed totals below this share of the season so far look like a reset, not corrections."""
MIN_SEASON_CASES = 50
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")


def season_totals(schools: pd.DataFrame) -> pd.Series:
    layout = HistoryLayout.of(schools.columns)
    carried = schools[layout.carry_overs].sum(axis=1) if layout.carry_overs else 0
    return schools[GTOTAL] - carried


def check_not_reset(schools: pd.DataFrame, totals: pd.DataFrame, rerun: str) -> None:
    """Stop when the feed's season totals collapsed: a new school year or summer session began.

    ``rerun``: how the person who ran this command closes the season (it names their command).
    """
    before = int(season_totals(schools).sum())
    now = int(totals["season_total"].sum())
    if before >= MIN_SEASON_CASES and now < RESET_SHARE * before:
        raise NewSeasonError(
            f"the feed reports {now} cases this season where the history counts {before}: the district reset its "
            "totals, as it does at a new school year or summer session. Nothing was written. If a new season began, "
            f"{rerun}, NAME naming the season that ended (e.g. SY2122 or Summer_22): it is closed into a carry-over "
            "column NAME and the feed starts the new one"
        )


def close_season(schools: pd.DataFrame, name: str) -> pd.DataFrame:
    """Add carry-over column ``name`` holding each school's season so far (the old process edited this by hand)."""
    layout = HistoryLayout.of(schools.columns)
    if not _NAME.match(name) or name.isdigit():
        raise InputError(f"new season name {name!r}: use letters, digits and underscores, e.g. SY2223")
    if name in schools.columns:
        raise InputError(
            f"new season name {name!r}: the history already has a column {name} (its carry-over columns: "
            f"{', '.join(layout.carry_overs) or 'none'}); nothing was written. Name the season that just ended "
            "with a name the history does not have yet"
        )
    closed = season_totals(schools).astype("int64")
    position = list(schools.columns).index(layout.days[0]) if layout.days else len(schools.columns)
    out = schools.copy()
    out.insert(position, name, closed)
    return out
