"""Apply a fresh feed to the per-school history: pure functions of DataFrames.

No I/O and no Prefect here, so the whole merge is testable in milliseconds and
benchmarkable at any size. Every change that is not plain new cases (a drift
repair, a correction, a school added) is returned as an explained event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from cps_covid.schema import (
    GTOTAL,
    LATITUDE,
    LONGITUDE,
    SCHOOL,
    SCHOOL_ID,
    TOTALS_COLUMNS,
    WINDOWS,
    HistoryLayout,
    column_day,
    day_column,
)


@dataclass(frozen=True)
class Event:
    """A data correction or notable change, tagged so it can be filtered and explained."""

    tag: str
    school_id: str
    school: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.tag}] {self.school} ({self.school_id}): {self.detail}"


@dataclass
class MergeResult:
    schools: pd.DataFrame
    day: str
    changes: pd.DataFrame
    """Schools whose season total moved in this run: id, name, coordinates, ``new_cases``."""
    events: list[Event] = field(default_factory=list)

    @property
    def new_cases(self) -> int:
        return int(self.changes["new_cases"].sum())

    def day_cases(self) -> pd.DataFrame:
        """The day's cumulative list: every school with cases in today's column."""
        rows = self.schools[self.schools[self.day] != 0]
        return rows[[SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID, self.day]].rename(columns={self.day: "cases"})


def season_totals_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Season total per school from feed rows (``CPS_School_ID``, integer ``cases``)."""
    totals = rows.groupby(SCHOOL_ID, sort=True, as_index=False)["cases"].sum()
    names = rows.dropna(subset=[SCHOOL]).drop_duplicates(SCHOOL_ID, keep="last")
    totals = totals.merge(names[[SCHOOL_ID, SCHOOL]], on=SCHOOL_ID, how="left")
    return totals.rename(columns={"cases": "season_total"})


def with_day_columns(schools: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Add zero-filled day columns up to ``as_of`` so there is one per calendar day."""
    layout = HistoryLayout.of(schools.columns)
    wanted = {day_column(as_of)}
    if layout.days:
        last = column_day(layout.days[-1])
        gap = (as_of - last).days
        wanted |= {day_column(last + timedelta(days=i)) for i in range(1, gap)}
    missing = sorted(wanted - set(layout.days))
    if not missing:
        return schools
    zeros = pd.DataFrame(0, index=schools.index, columns=missing, dtype="int64")
    days = sorted([*layout.days, *missing])
    fixed = [c for c in schools.columns if c not in layout.days and c not in layout.trailing]
    return pd.concat([schools, zeros], axis=1)[[*fixed, *days, *layout.trailing]]


def repair_drift(schools: pd.DataFrame) -> tuple[pd.DataFrame, list[Event]]:
    """Make ``gTotal`` equal its day columns again without moving the current season.

    The season total (``gTotal`` minus carry-overs) is what the source confirms,
    so a mismatch is put on the latest carry-over column (the closed seasons).
    """
    layout = HistoryLayout.of(schools.columns)
    day_sum = schools[layout.days].sum(axis=1)
    drift = day_sum - schools[GTOTAL]
    bad = drift != 0
    if not bad.any():
        return schools, []
    schools = schools.copy()
    events = []
    carry = layout.carry_overs[-1] if layout.carry_overs else None
    for idx in schools.index[bad]:
        old_total, old_carry = schools.at[idx, GTOTAL], schools.at[idx, carry] if carry else 0
        detail = f"day columns sum to {day_sum[idx]} but {GTOTAL} was {old_total}; {GTOTAL} set to {day_sum[idx]}"
        if carry:
            detail += f" and {carry} from {old_carry} to {old_carry + drift[idx]}, season total unchanged"
        events.append(Event("drift-repair", schools.at[idx, SCHOOL_ID], schools.at[idx, SCHOOL], detail))
    schools.loc[bad, GTOTAL] = day_sum[bad]
    if carry:
        schools.loc[bad, carry] = schools.loc[bad, carry] + drift[bad]
    return schools, events


def add_new_schools(
    schools: pd.DataFrame, totals: pd.DataFrame, profiles: pd.DataFrame
) -> tuple[pd.DataFrame, list[Event]]:
    """Append schools seen for the first time; they are never dropped afterwards."""
    new_ids = totals.loc[~totals[SCHOOL_ID].isin(schools[SCHOOL_ID]), [SCHOOL_ID, SCHOOL]]
    if new_ids.empty:
        return schools, []
    found = new_ids.merge(profiles, on=SCHOOL_ID, how="left", suffixes=("_feed", ""))
    unprofiled = found[SCHOOL].isna()
    fallback = found[f"{SCHOOL}_feed"].fillna("SCHOOL " + found[SCHOOL_ID])
    found[SCHOOL] = found[SCHOOL].fillna(fallback).str.upper().str.replace(" - ", "-", regex=False)
    rows = pd.DataFrame(0, index=range(len(found)), columns=schools.columns)
    rows[SCHOOL] = found[SCHOOL].to_numpy()
    rows[SCHOOL_ID] = found[SCHOOL_ID].to_numpy()
    rows[LATITUDE] = found[LATITUDE].astype("float64").to_numpy()
    rows[LONGITUDE] = found[LONGITUDE].astype("float64").to_numpy()
    rows = rows.astype(schools.dtypes.to_dict())
    events = [
        Event(
            "school-added-without-profile" if missing else "school-added",
            sid,
            name,
            "no school profile found: kept with its id, no coordinates"
            if missing
            else "first seen in the feed, added from its school profile",
        )
        for sid, name, missing in zip(found[SCHOOL_ID], found[SCHOOL], unprofiled, strict=True)
    ]
    return pd.concat([schools, rows], ignore_index=True), events


def recompute_windows(schools: pd.DataFrame) -> pd.DataFrame:
    """7/14/21-day totals by calendar day, ending at the latest day column."""
    layout = HistoryLayout.of(schools.columns)
    if not layout.days:
        return schools
    dates = pd.to_datetime(pd.Index(layout.days), format="%Y%m%d")
    end = dates.max()
    values = schools[layout.days].to_numpy()
    schools = schools.copy()
    for column, length in WINDOWS.items():
        in_window = np.asarray(dates > end - pd.Timedelta(days=length))
        schools[column] = values[:, in_window].sum(axis=1)
    return schools


def apply_feed(
    history: pd.DataFrame,
    totals: pd.DataFrame,
    as_of: date,
    *,
    profiles: pd.DataFrame | None = None,
    ignore_ids: frozenset[str] = frozenset(),
) -> MergeResult:
    """Merge season totals from the feed into the per-school history as of ``as_of``.

    ``totals`` holds ``CPS_School_ID``, ``season_total`` and optionally ``School``
    (a name the feed carried). New cases are the season total minus what the
    history already counts for the season (``gTotal`` minus carry-overs); they
    land in the ``as_of`` day column, negative when the district removed cases.
    """
    events: list[Event] = []
    totals = totals.loc[~totals[SCHOOL_ID].isin(ignore_ids)]
    if SCHOOL not in totals:
        totals = totals.assign(**{SCHOOL: pd.NA})
    if profiles is None:
        profiles = pd.DataFrame(columns=[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE])
    schools = with_day_columns(history, as_of)
    schools, repaired = repair_drift(schools)
    schools, added = add_new_schools(schools, totals, profiles)
    events += repaired + added

    layout = HistoryLayout.of(schools.columns)
    day = day_column(as_of)
    carried = schools[layout.carry_overs].sum(axis=1) if layout.carry_overs else 0
    reported = schools[SCHOOL_ID].map(totals.set_index(SCHOOL_ID)["season_total"])
    present = reported.notna()
    season = schools[GTOTAL] - carried
    delta = (reported - season).where(present, 0).astype("int64")
    schools[day] = schools[day] + delta
    schools[GTOTAL] = schools[GTOTAL] + delta
    schools = recompute_windows(schools)

    moved = delta != 0
    changes = schools.loc[moved, [SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE]].assign(new_cases=delta[moved])
    events += [
        Event("correction", sid, name, f"season total went down by {-n}: applied as {n} on {day}")
        for sid, name, n in zip(changes[SCHOOL_ID], changes[SCHOOL], changes["new_cases"], strict=True)
        if n < 0
    ]
    return MergeResult(schools=schools, day=day, changes=changes.reset_index(drop=True), events=events)


def district_totals(schools: pd.DataFrame) -> pd.DataFrame:
    """``CPStotals.csv`` recomputed from the per-school table, so it can never drift."""
    layout = HistoryLayout.of(schools.columns)
    daily = schools[layout.days].sum(axis=0)
    daily.index = pd.to_datetime(daily.index, format="%Y%m%d")
    sums = {n: daily.rolling(f"{n}D").sum().astype("int64") for n in (7, 14)}
    table = pd.DataFrame(
        {
            "date": np.asarray(layout.days, dtype="int64"),
            "daily": daily.to_numpy(),
            "running": daily.cumsum().to_numpy(),
            "7DaySum": sums[7].to_numpy(),
            "7DayAvg": sums[7].to_numpy() / 7,
            "14DaySum": sums[14].to_numpy(),
            "14DayAvg": sums[14].to_numpy() / 14,
        }
    )
    return table[TOTALS_COLUMNS]


def transposed(schools: pd.DataFrame) -> pd.DataFrame:
    """``newFormatTest.csv``: one row per former column, one column per school."""
    out = schools.set_index(SCHOOL).T.reset_index()
    return out.rename(columns={"index": SCHOOL})
