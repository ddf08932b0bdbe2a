"""Seasons: noticing that the district's totals were reset, closing a season, the season calendar (pure).

The district resets its season totals at each school year and summer session.
The old process had its carry-over columns edited by hand each time
(``preSY2122``, then ``SY2122``, ``Summer_22``). With a season calendar (the
``seasons`` setting: each season's name and first day) a reset within
``season_window_days`` of a season's first day closes the season that ended
into its carry-over column by itself; anywhere else a reset stops the run with
guidance, and ``new_season=NAME`` closes it by hand.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from cps_covid.errors import GapError, InputError
from cps_covid.rules.schema import GTOTAL, HistoryLayout, column_day
from cps_covid.rules.season_calendar import Rerun, SeasonRules, check_name

RESET_SHARE = 0.2
"""Feed totals below this share of the season so far look like a reset, not corrections."""
MIN_SEASON_CASES = 50


def season_totals(schools: pd.DataFrame) -> pd.Series:
    layout = HistoryLayout.of(schools.columns)
    carried = schools[layout.carry_overs].sum(axis=1) if layout.carry_overs else 0
    return schools[GTOTAL] - carried


def is_reset(schools: pd.DataFrame, totals: pd.DataFrame) -> bool:
    """The feed's season totals collapsed (a new school year or summer session), or it lists nothing at all.

    An empty feed agrees with a history whose season has no case yet (the first
    days of a school year): that is a day of zeros, not a reset.
    """
    before = int(season_totals(schools).sum())
    now = int(totals["season_total"].sum())
    if totals.empty:
        return before > 0
    return before >= MIN_SEASON_CASES and now < RESET_SHARE * before


def reset_message(schools: pd.DataFrame, totals: pd.DataFrame, rerun: str) -> str:
    """Why the run stopped at a reset and how to close the season (``rerun`` names the command that was run)."""
    before = int(season_totals(schools).sum())
    if totals.empty:
        what = (
            f"the feed lists no case at all where the history counts {before} this season: either the district "
            "reset its totals, as it does at a new school year or summer session, or the source is failing"
        )
    else:
        what = (
            f"the feed reports {int(totals['season_total'].sum())} cases this season where the history counts "
            f"{before}: the district reset its totals, as it does at a new school year or summer session"
        )
    return (
        f"{what}. Nothing was written. If a new season began, {rerun}, NAME naming the season that ended (e.g. "
        "SY2122 or Summer_22): it is closed into a carry-over column NAME and the feed starts the new one"
    )


def last_day(schools: pd.DataFrame) -> date | None:
    days = HistoryLayout.of(schools.columns).days
    return column_day(days[-1]) if days else None


def close_season(schools: pd.DataFrame, name: str) -> pd.DataFrame:
    """Add carry-over column ``name`` holding each school's season so far (the old process edited this by hand)."""
    layout = HistoryLayout.of(schools.columns)
    check_name(name, "new season name")
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


def check_gap(schools: pd.DataFrame, as_of: date, rules: SeasonRules, rerun: Rerun) -> None:
    """Stop before zero-filling more days than ``rules.max_gap_days`` allows (runs stopped, the source went away)."""
    last = last_day(schools)
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
