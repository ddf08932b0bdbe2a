"""The merge done the way the old process did it: one school at a time.

Written for the benchmark from the description of the old Lambda's update: read
the table, add today's column, then ``iterrows`` over the schools, compare each
school's season total with the feed's, set the changed cells with ``.at`` and
recompute that school's 7/14/21-day windows from its own cells; new schools
appended with ``.loc[len(df)]``, then moved to their place by name; the district totals built day by day; the
transposed file with ``DataFrame.transpose``. It applies the project's rules
(calendar-day windows, gap days, drift repair, corrections, carry-overs), so
its output must equal ``cps_covid.rules.merge`` exactly: the benchmark checks that
before it reports a time.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from cps_covid.rules.merge import Event, MergeResult
from cps_covid.rules.schema import (
    ADMINISTRATIVE_ID,
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


def _add_day_columns(schools: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Today's column and any skipped days, zero-filled, inserted in date order one by one."""
    layout = HistoryLayout.of(schools.columns)
    wanted = [day_column(as_of)]
    if layout.days:
        last = column_day(layout.days[-1])
        wanted += [day_column(last + timedelta(days=i)) for i in range(1, (as_of - last).days)]
    missing = sorted(set(wanted) - set(layout.days))
    if not missing:
        return schools
    days = sorted([*layout.days, *missing])
    fixed = [c for c in schools.columns if c not in layout.days and c not in layout.trailing]
    schools = schools.copy()
    for day in missing:
        schools[day] = 0
    return schools[[*fixed, *days, *layout.trailing]].copy()  # one block per dtype, as the old pandas read it


def _repair_drift_rows(schools: pd.DataFrame, events: list[Event]) -> None:
    """Per school: sum its day cells, and where ``gTotal`` disagrees move the difference to the carry-over."""
    layout = HistoryLayout.of(schools.columns)
    carry = layout.carry_overs[-1] if layout.carry_overs else None
    first = schools.columns.get_loc(layout.days[0])
    last = schools.columns.get_loc(layout.days[-1]) + 1
    for position, (index, row) in enumerate(schools.iterrows()):
        day_sum = schools.iloc[position, first:last].sum()
        total = row[GTOTAL]
        if day_sum == total:
            continue
        old_carry = row[carry] if carry else 0
        detail = f"day columns sum to {day_sum} but {GTOTAL} was {total}; {GTOTAL} set to {day_sum}"
        if carry:
            detail += f" and {carry} from {old_carry} to {old_carry + day_sum - total}, season total unchanged"
            schools.at[index, carry] = old_carry + day_sum - total
        schools.at[index, GTOTAL] = day_sum
        events.append(Event("drift-repair", row[SCHOOL_ID], row[SCHOOL], detail))


def _append_new_schools(
    schools: pd.DataFrame, season_totals: dict[str, int], names: dict[str, object], profiles: pd.DataFrame
) -> tuple[pd.DataFrame, list[Event]]:
    """Each id the history has never seen becomes a row: its profile's name and coordinates, zero counts."""
    known = set(schools[SCHOOL_ID])
    found = {row[SCHOOL_ID]: row for _, row in profiles.iterrows()}
    dtypes = schools.dtypes.to_dict()
    schools = schools.reset_index(drop=True)
    kept = len(schools)
    events = []
    added = False
    for school_id in season_totals:
        if school_id in known:
            continue
        profile = found.get(school_id)
        latitude = longitude = float("nan")
        if profile is not None:
            latitude, longitude = float(profile[LATITUDE]), float(profile[LONGITUDE])
        profiled = profile is not None and not pd.isna(profile[SCHOOL])
        if profiled:
            name = profile[SCHOOL]
        else:
            name = names.get(school_id)
            if name is None or pd.isna(name):
                name = "SCHOOL " + school_id
        name = str(name).upper().replace(" - ", "-")
        values = []
        for column in schools.columns:
            values.append({SCHOOL: name, SCHOOL_ID: school_id, LATITUDE: latitude, LONGITUDE: longitude}.get(column, 0))
        schools.loc[len(schools)] = values
        added = True
        if not profiled:
            events.append(
                Event(
                    "school-added-without-profile",
                    school_id,
                    name,
                    "no school profile found: kept with its id, no coordinates",
                )
            )
        else:
            events.append(
                Event("school-added", school_id, name, "first seen in the feed, added from its school profile")
            )
    return (_in_name_order(schools.astype(dtypes), kept) if added else schools), events


def _in_name_order(schools: pd.DataFrame, kept: int) -> pd.DataFrame:
    """Each new row (from ``kept`` on) moved before the first kept school, ADMINISTRATIVE aside, named after it."""
    names, ids = schools[SCHOOL].tolist(), schools[SCHOOL_ID].tolist()
    order = list(range(kept))
    for new in sorted(range(kept, len(schools)), key=lambda i: names[i]):
        after = [p for p, i in enumerate(order) if i < kept and ids[i] != ADMINISTRATIVE_ID and names[i] > names[new]]
        order.insert(after[0] if after else len(order), new)
    return schools.iloc[order].reset_index(drop=True)


def apply_feed_by_rows(
    history: pd.DataFrame,
    totals: pd.DataFrame,
    as_of: date,
    *,
    profiles: pd.DataFrame | None = None,
    ignore_ids: frozenset[str] = frozenset(),
) -> MergeResult:
    """``cps_covid.rules.merge.apply_feed`` one school at a time."""
    season_totals: dict[str, int] = {}
    names: dict[str, object] = {}
    for _, row in totals.iterrows():
        if row[SCHOOL_ID] in ignore_ids:
            continue
        season_totals[row[SCHOOL_ID]] = row["season_total"]
        names[row[SCHOOL_ID]] = row[SCHOOL] if SCHOOL in totals.columns else None
    if profiles is None:
        profiles = pd.DataFrame(columns=[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE])

    events: list[Event] = []
    schools = _add_day_columns(history, as_of)
    if schools is history:
        schools = history.copy()
    _repair_drift_rows(schools, events)
    if any(school_id not in set(schools[SCHOOL_ID]) for school_id in season_totals):
        schools, added = _append_new_schools(schools, season_totals, names, profiles)
        events += added

    layout = HistoryLayout.of(schools.columns)
    day = day_column(as_of)
    dates = [column_day(d) for d in layout.days]
    first_day = schools.columns.get_loc(layout.days[0])
    windows = {}  # the day columns of each window, as a slice of the row (dates are sorted)
    for name, n in WINDOWS.items():
        inside = [i for i, d in enumerate(dates) if d > dates[-1] - timedelta(days=n)]
        windows[name] = (first_day + inside[0], first_day + inside[-1] + 1)
    changes = []
    corrections = []
    for index, row in schools.iterrows():
        school_id = row[SCHOOL_ID]
        if school_id in season_totals:
            carried = 0
            for carry in layout.carry_overs:
                carried += row[carry]
            season = row[GTOTAL] - carried
            if season_totals[school_id] != season:
                new_cases = season_totals[school_id] - season
                schools.at[index, day] = row[day] + new_cases
                schools.at[index, GTOTAL] = row[GTOTAL] + new_cases
                changes.append([school_id, row[SCHOOL], row[LATITUDE], row[LONGITUDE], new_cases])
                if new_cases < 0:
                    corrections.append(
                        Event(
                            "correction",
                            school_id,
                            row[SCHOOL],
                            f"season total went down by {-new_cases}: applied as {new_cases} on {day}",
                        )
                    )
        # the windows, recomputed for every school from its own cells (today's included)
        position = schools.index.get_loc(index)
        for name, (start, end) in windows.items():
            schools.at[index, name] = schools.iloc[position, start:end].sum()

    change_frame = pd.DataFrame(changes, columns=[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE, "new_cases"])
    change_frame = change_frame.astype(
        {
            SCHOOL_ID: schools.dtypes[SCHOOL_ID],
            SCHOOL: schools.dtypes[SCHOOL],
            LATITUDE: schools.dtypes[LATITUDE],
            LONGITUDE: schools.dtypes[LONGITUDE],
            "new_cases": "int64",
        }
    )
    return MergeResult(schools=schools, day=day, changes=change_frame, events=events + corrections)


def district_totals_by_rows(schools: pd.DataFrame) -> pd.DataFrame:
    """``CPStotals.csv`` the way the old process added each day's row: that day's sum, the running total,
    and the trailing 7/14 calendar days from the rows already there."""
    layout = HistoryLayout.of(schools.columns)
    table = pd.DataFrame(columns=TOTALS_COLUMNS)
    dates = []
    for day in layout.days:
        daily = schools[day].sum()
        dates.append(column_day(day))
        running = table["daily"].sum() + daily
        sums = {}
        for n in (7, 14):
            recent = [i for i, d in enumerate(dates[:-1]) if d > dates[-1] - timedelta(days=n)]
            sums[n] = table["daily"].iloc[recent].sum() + daily
        table.loc[len(table)] = [int(day), daily, running, sums[7], sums[7] / 7, sums[14], sums[14] / 14]
    return table.astype(
        {c: "int64" for c in ("date", "daily", "running", "7DaySum", "14DaySum")}
        | {"7DayAvg": "float64", "14DayAvg": "float64"}
    )


def transposed_by_rows(schools: pd.DataFrame) -> pd.DataFrame:
    """``newFormatTest.csv`` the old way: transpose, first row as the header, former column names in front."""
    names = list(schools.columns)[1:]
    flipped = schools.transpose()
    header = flipped.iloc[0]
    flipped = flipped[1:]
    flipped.columns = header
    flipped.insert(0, SCHOOL, names, allow_duplicates=True)
    return flipped.reset_index(drop=True)


def merge_by_rows(
    history: pd.DataFrame,
    totals: pd.DataFrame,
    as_of: date,
    *,
    profiles: pd.DataFrame | None = None,
    ignore_ids: frozenset[str] = frozenset(),
) -> tuple[MergeResult, pd.DataFrame, pd.DataFrame]:
    """The three published tables, row by row: (merge result, district totals, transposed)."""
    result = apply_feed_by_rows(history, totals, as_of, profiles=profiles, ignore_ids=ignore_ids)
    return result, district_totals_by_rows(result.schools), transposed_by_rows(result.schools)
