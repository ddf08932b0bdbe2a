"""Apply a fresh feed to the per-school history: pure functions of DataFrames.

No I/O and no Prefect here, so the whole merge is testable in milliseconds and
benchmarkable at any size. Every change that is not plain new cases (a drift
repair, a correction, a school added) is returned as an explained event.

Memory: the history is never copied whole more than once. ``apply_feed`` reads
each count column once into one new column-major int64 matrix (the output's
day columns, with room for new days and new schools) and does the arithmetic
there; the other steps work column by column on the columns they change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

import numpy as np
import pandas as pd

from cps_covid.schema import (
    ADMINISTRATIVE_ID,
    GTOTAL,
    LATITUDE,
    LONGITUDE,
    SCHOOL,
    SCHOOL_ID,
    WINDOWS,
    HistoryLayout,
    column_day,
    day_column,
    is_day_column,
)

INT64 = np.dtype("int64")
BATCH_CELLS = 1 << 21
"""Cells read at a time when a step walks many columns of a short table (16 MiB of int64)."""
ONE_COLUMN_ROWS = 2048
"""From this many rows, columns are read one at a time (each is already contiguous: no copy)."""


class Tag(StrEnum):
    """What kind of correction or notable change an ``Event`` reports (its text says what, where and why)."""

    DRIFT_REPAIR = "drift-repair"
    """``gTotal`` disagreed with the day columns: set to their sum, the difference kept in a carry-over."""
    SCHOOL_ADDED = "school-added"
    """The feed named a school the history lacked: added at its place by name, with its profile."""
    SCHOOL_ADDED_WITHOUT_PROFILE = "school-added-without-profile"
    """As ``SCHOOL_ADDED``, but no profile was found: no coordinates, so no map pin."""
    CORRECTION = "correction"
    """A season total went down: the negative difference applied on the day, as the district corrected it."""
    NEW_SEASON = "new-season"
    """The season was closed into a carry-over column (by the calendar or by the operator)."""
    MIGRATION = "migration"
    """An older layout brought to the current one (a column added, renamed or moved); no value changes."""
    OUTLIER = "outlier"
    """A school's new cases stand far above its trailing weeks: flagged, never dropped."""
    DISTRICT_JUMP = "district-jump"
    """The district's day stands far above its trailing weeks: flagged, never dropped."""


@dataclass(frozen=True)
class Event:
    """A data correction or notable change, tagged so it can be filtered and explained."""

    tag: Tag
    school_id: str
    school: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.tag}] {self.school} ({self.school_id}): {self.detail}"


def added_cases(changes: pd.DataFrame) -> int:
    """The cases an update adds, as subscribers, the summary and the CLI are told: corrections do not subtract."""
    return int(changes["new_cases"].clip(lower=0).sum())


def schools_affected(changes: pd.DataFrame) -> int:
    """The schools with new cases in an update (a school with only a correction is not affected)."""
    return int((changes["new_cases"] > 0).sum())


@dataclass
class MergeResult:
    schools: pd.DataFrame
    day: str
    changes: pd.DataFrame
    """Schools whose season total moved in this run: id, name, coordinates, ``new_cases``."""
    events: list[Event] = field(default_factory=list)
    season_closed: str | None = None
    """The carry-over column this update closed the season into, if it did."""
    closed_by_calendar: bool = False

    @property
    def net_cases(self) -> int:
        """Added cases minus the cases the district removed (corrections)."""
        return int(self.changes["new_cases"].sum())

    @property
    def added_cases(self) -> int:
        return added_cases(self.changes)

    @property
    def schools_affected(self) -> int:
        return schools_affected(self.changes)

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


# --- column-wise helpers: never materialise the whole table ---------------------------------------------------


def _all_int64(frame: pd.DataFrame, columns: list[str]) -> bool:
    kinds = dict(zip(frame.columns.tolist(), frame.dtypes.tolist(), strict=True))
    return all(kinds[c] == INT64 for c in columns)


def _column_batches(frame: pd.DataFrame, columns: list[str]) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, values)``: the int64 ``columns`` as 2-D arrays, ``values[:, i]`` being ``columns[start + i]``.

    Long tables: one column at a time, as a view (no copy at all). Short ones: a few hundred columns per
    pandas call, whose fixed cost would otherwise be most of the time.
    """
    if len(frame) >= ONE_COLUMN_ROWS:
        for start, column in enumerate(columns):
            yield start, frame[column].to_numpy()[:, np.newaxis]
        return
    batch = max(1, min(len(columns), BATCH_CELLS // max(1, len(frame))))
    for start in range(0, len(columns), batch):
        yield start, frame[columns[start : start + batch]].to_numpy(dtype=INT64)


def row_sums(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """``frame[columns].sum(axis=1)`` without copying the columns into one block first."""
    if not columns or not frame.columns.is_unique or not _all_int64(frame, columns):
        return frame[columns].sum(axis=1)
    total = np.zeros(len(frame), dtype=INT64)
    for _, values in _column_batches(frame, columns):
        total += values.sum(axis=1)
    return pd.Series(total, index=frame.index)


def column_sums(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """``frame[columns].sum(axis=0)``, a few columns at a time."""
    if not columns or not frame.columns.is_unique or not _all_int64(frame, columns):
        return frame[columns].sum(axis=0)
    sums = np.empty(len(columns), dtype=INT64)
    for start, values in _column_batches(frame, columns):
        sums[start : start + values.shape[1]] = values.sum(axis=0)
    return pd.Series(sums, index=pd.Index(columns, dtype=frame.columns.dtype))


def _window_columns(days: list[str]) -> dict[str, np.ndarray]:
    """Positions (in ``days``) of the day columns inside each 7/14/21-day window ending at the latest day."""
    dates = _dates(days)
    end = dates.max()
    return {column: np.flatnonzero(dates > end - np.timedelta64(length, "D")) for column, length in WINDOWS.items()}


def _dates(days: list[str]) -> np.ndarray:
    """``YYYYMMDD`` column names as ``datetime64[D]`` (a name that is not a date raises ValueError).

    Read-only: the cache hands the same array to every caller with the same columns. Day columns are
    always ``str`` (``HistoryLayout`` finds them by pattern), so their tuple is a safe cache key.
    """
    return _parsed_dates(tuple(days))


@lru_cache(maxsize=8)
def _parsed_dates(days: tuple[str, ...]) -> np.ndarray:
    if all(is_day_column(d) for d in days):
        dates = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in days], dtype="datetime64[D]")
    else:
        dates = pd.to_datetime(pd.Index(days), format="%Y%m%d").to_numpy().astype("datetime64[D]")
    dates.setflags(write=False)
    return dates


def _day_plan(layout: HistoryLayout, as_of: date) -> tuple[list[str], list[str]]:
    """The day columns after adding ``as_of`` and the gap days before it: (all days, the missing ones)."""
    wanted = {day_column(as_of)}
    if layout.days:
        last = column_day(layout.days[-1])
        gap = (as_of - last).days
        wanted |= {day_column(last + timedelta(days=i)) for i in range(1, gap)}
    missing = sorted(wanted - set(layout.days))
    if not missing:
        return list(layout.days), []
    return sorted([*layout.days, *missing]), missing


def _drift_events(
    ids: np.ndarray,
    names: np.ndarray,
    rows: np.ndarray,
    day_sum: np.ndarray,
    totals: np.ndarray,
    carry: str | None,
    carried: np.ndarray | None,
) -> list[Event]:
    events = []
    for at in rows:
        old_total, old_carry = totals[at], carried[at] if carried is not None else 0
        drift = day_sum[at] - old_total
        detail = f"day columns sum to {day_sum[at]} but {GTOTAL} was {old_total}; {GTOTAL} set to {day_sum[at]}"
        if carry:
            detail += f" and {carry} from {old_carry} to {old_carry + drift}, season total unchanged"
        events.append(Event(Tag.DRIFT_REPAIR, ids[at], names[at], detail))
    return events


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _looked_up(
    new_ids: np.ndarray, feed_names: np.ndarray, profiles: pd.DataFrame
) -> dict[str, list | np.ndarray] | None:
    """The left join of new ids and their profiles done with a dict: when every profile id is a unique str."""
    keys = profiles[SCHOOL_ID].tolist()
    if len(set(keys)) != len(keys) or not all(isinstance(k, str) for k in keys):
        return None
    by_id = dict(zip(keys, zip(profiles[SCHOOL], profiles[LATITUDE], profiles[LONGITUDE], strict=True), strict=True))
    missing = (None, np.nan, np.nan)
    ids, names, latitudes, longitudes, unprofiled = [], [], [], [], []
    for school_id, feed_name in zip(new_ids, feed_names, strict=True):
        if not isinstance(school_id, str):
            return None
        name, latitude, longitude = by_id.get(school_id, missing)
        absent = _missing(name)
        if absent:
            name = "SCHOOL " + school_id if _missing(feed_name) else feed_name
        if not isinstance(name, str):
            return None
        ids.append(school_id)
        names.append(name.upper().replace(" - ", "-"))
        latitudes.append(latitude)
        longitudes.append(longitude)
        unprofiled.append(absent)
    return {
        SCHOOL_ID: ids,
        SCHOOL: names,
        LATITUDE: _floats(latitudes),
        LONGITUDE: _floats(longitudes),
        "unprofiled": unprofiled,
    }


def _floats(values: list) -> np.ndarray:
    """As ``astype("float64")`` of the joined column: None and pd.NA become NaN, numeric text is parsed."""
    if all(type(v) is float for v in values):
        return np.array(values, dtype="float64")
    return pd.Series(values, dtype=object).astype("float64").to_numpy()


def _new_school_rows(
    schools: pd.DataFrame, totals: pd.DataFrame, profiles: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame | None, list[Event]]:
    """Rows (only ``columns``, typed like ``schools``) for ids seen for the first time, with their events."""
    unseen = ~totals[SCHOOL_ID].isin(schools[SCHOOL_ID]).to_numpy()
    if not unseen.any():
        return None, []
    found = _looked_up(totals[SCHOOL_ID].to_numpy()[unseen], totals[SCHOOL].to_numpy()[unseen], profiles)
    if found is None:  # the general case: a left join (a profile listed twice adds the school twice)
        new_ids = totals.loc[unseen, [SCHOOL_ID, SCHOOL]]
        joined = new_ids.merge(profiles, on=SCHOOL_ID, how="left", suffixes=("_feed", ""))
        fallback = joined[f"{SCHOOL}_feed"].fillna("SCHOOL " + joined[SCHOOL_ID])
        found = {
            SCHOOL_ID: joined[SCHOOL_ID].to_numpy(),
            SCHOOL: joined[SCHOOL].fillna(fallback).str.upper().str.replace(" - ", "-", regex=False).to_numpy(),
            LATITUDE: joined[LATITUDE].astype("float64").to_numpy(),
            LONGITUDE: joined[LONGITUDE].astype("float64").to_numpy(),
            "unprofiled": joined[SCHOOL].isna().to_numpy(),
        }
    count = len(found[SCHOOL_ID])
    if schools.columns.is_unique:
        data: dict[str, object] = {c: np.zeros(count, dtype=INT64) for c in columns}
        for column in (SCHOOL, SCHOOL_ID, LATITUDE, LONGITUDE):
            data[column] = np.asarray(found[column], dtype=object if column in (SCHOOL, SCHOOL_ID) else None)
        rows = pd.DataFrame(data, index=range(count))
        wanted = dict(zip(schools.columns.tolist(), schools.dtypes.tolist(), strict=True))
        built = dict(zip(rows.columns.tolist(), rows.dtypes.tolist(), strict=True))
        differing = {c: wanted[c] for c in columns if built[c] != wanted[c]}
        if differing:  # astype of a column already of its type changes nothing: only the others are cast
            rows = rows.astype(differing)
    else:
        rows = pd.DataFrame(0, index=range(count), columns=columns)
        for column in (SCHOOL, SCHOOL_ID, LATITUDE, LONGITUDE):
            rows[column] = found[column]
        rows = rows.astype(schools.dtypes[columns].to_dict())
    unprofiled = found["unprofiled"]
    events = [
        Event(
            Tag.SCHOOL_ADDED_WITHOUT_PROFILE if missing else Tag.SCHOOL_ADDED,
            sid,
            name,
            "no school profile found: kept with its id, no coordinates"
            if missing
            else "first seen in the feed, added from its school profile",
        )
        for sid, name, missing in zip(found[SCHOOL_ID], found[SCHOOL], unprofiled, strict=True)
    ]
    return rows, events


# --- the steps, each usable on its own -------------------------------------------------------------------------


def with_day_columns(schools: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Add zero-filled day columns up to ``as_of`` so there is one per calendar day."""
    layout = HistoryLayout.of(schools.columns)
    days, missing = _day_plan(layout, as_of)
    if not missing:
        return schools
    zeros = pd.DataFrame(0, index=schools.index, columns=missing, dtype="int64")
    placed = {*layout.days, *layout.trailing}
    fixed = [c for c in schools.columns if c not in placed]
    # concat(axis=1) and a column selection share the existing columns' data (copy-on-write): nothing is copied
    return pd.concat([schools, zeros], axis=1)[[*fixed, *days, *layout.trailing]]


DRIFT_CARRY_OVER = "drift"
"""The carry-over column a drift repair adds when a history has none to put the difference on."""


def with_drift_carry_over(schools: pd.DataFrame) -> tuple[pd.DataFrame, list[Event]]:
    """A zero carry-over column ``drift`` when ``gTotal`` disagrees with the day columns and there is no carry-over.

    Without one, setting ``gTotal`` to its day columns would move the season total
    the source confirms, and the next feed would look like the district removed
    cases: a correction nobody made, sent to subscribers.
    """
    layout = HistoryLayout.of(schools.columns)
    if layout.carry_overs or not layout.days or not (row_sums(schools, layout.days) != schools[GTOTAL]).any():
        return schools, []
    out = schools.copy()
    out.insert(out.columns.get_loc(layout.days[0]), DRIFT_CARRY_OVER, np.zeros(len(out), dtype=INT64))
    detail = (
        f"carry-over column {DRIFT_CARRY_OVER} added: the history has none, so it holds what the day columns count "
        f"beyond {GTOTAL}, and the season total the source confirms stays where it was"
    )
    return out, [Event(Tag.DRIFT_REPAIR, "*", "DISTRICT", detail)]


def repair_drift(schools: pd.DataFrame) -> tuple[pd.DataFrame, list[Event]]:
    """Make ``gTotal`` equal its day columns again without moving the current season.

    The season total (``gTotal`` minus carry-overs) is what the source confirms,
    so a mismatch is put on the latest carry-over column (the closed seasons).
    """
    layout = HistoryLayout.of(schools.columns)
    day_sum = row_sums(schools, layout.days)
    drift = day_sum - schools[GTOTAL]
    bad = drift != 0
    if not bad.any():
        return schools, []
    carry = layout.carry_overs[-1] if layout.carry_overs else None
    at = np.flatnonzero(bad.to_numpy())
    events = _drift_events(
        schools[SCHOOL_ID].to_numpy(),
        schools[SCHOOL].to_numpy(),
        at,
        day_sum.to_numpy(),
        schools[GTOTAL].to_numpy(),
        carry,
        schools[carry].to_numpy() if carry else None,
    )
    # only the two changed columns are copied; the others stay shared with the input (copy-on-write)
    total = schools[GTOTAL].copy()
    total.loc[bad] = day_sum[bad]
    changed = {GTOTAL: total}
    if carry:
        carried = schools[carry].copy()
        carried.loc[bad] = carried.loc[bad] + drift[bad]
        changed[carry] = carried
    return schools.assign(**changed), events


def add_new_schools(
    schools: pd.DataFrame, totals: pd.DataFrame, profiles: pd.DataFrame
) -> tuple[pd.DataFrame, list[Event]]:
    """Append schools seen for the first time; they are never dropped afterwards."""
    rows, events = _new_school_rows(schools, totals, profiles, list(schools.columns))
    if rows is None:
        return schools, []
    return pd.concat([schools, rows], ignore_index=True), events


def recompute_windows(schools: pd.DataFrame) -> pd.DataFrame:
    """7/14/21-day totals by calendar day, ending at the latest day column."""
    windows = window_sums(schools)
    return schools.assign(**windows) if windows else schools


def window_sums(schools: pd.DataFrame) -> dict[str, np.ndarray]:
    """``7Total``/``14Total``/``21Total`` as the day columns give them (none when there are no day columns)."""
    layout = HistoryLayout.of(schools.columns)
    if not layout.days:
        return {}
    windows = {}
    if schools.columns.is_unique and _all_int64(schools, layout.days):
        for column, positions in _window_columns(layout.days).items():
            windows[column] = schools[[layout.days[i] for i in positions]].to_numpy().sum(axis=1)
    else:
        values = schools[layout.days].to_numpy()
        for column, positions in _window_columns(layout.days).items():
            windows[column] = values[:, positions].sum(axis=1)
    return windows


# --- the merge ---------------------------------------------------------------------------------------------------


Merged = tuple[pd.DataFrame, pd.Series, list[Event]]
"""The merged table, the new cases per row (its index) and the drift/new-school events."""


def _apply_by_steps(history: pd.DataFrame, totals: pd.DataFrame, as_of: date, profiles: pd.DataFrame) -> Merged:
    """The merge as a composition of the public steps (any column types)."""
    day = day_column(as_of)
    schools = with_day_columns(history, as_of)
    schools, repaired = repair_drift(schools)
    schools, added = add_new_schools(schools, totals, profiles)
    layout = HistoryLayout.of(schools.columns)
    carried = row_sums(schools, layout.carry_overs) if layout.carry_overs else 0
    delta = _delta(schools[SCHOOL_ID], schools[GTOTAL] - carried, totals)
    schools = schools.assign(**{day: schools[day] + delta, GTOTAL: schools[GTOTAL] + delta})
    return recompute_windows(schools), delta, repaired + added


def _delta(ids: pd.Series, season: pd.Series, totals: pd.DataFrame) -> pd.Series:
    """New cases per school: the feed's season total minus the season the history counts (0 when absent)."""
    keys, reported_totals = pd.Index(totals[SCHOOL_ID]), totals["season_total"]
    if len(keys) and keys.is_unique and reported_totals.dtype == INT64 and season.dtype == INT64:
        at = keys.get_indexer(ids)
        new_cases = np.where(at >= 0, reported_totals.to_numpy()[at] - season.to_numpy(), 0)
        return pd.Series(new_cases, index=season.index, dtype=INT64)
    reported = ids.map(totals.set_index(SCHOOL_ID)["season_total"])
    present = reported.notna()
    return (reported - season).where(present, 0).astype("int64")


def _vectorisable(history: pd.DataFrame, layout: HistoryLayout) -> bool:
    counts = [*WINDOWS, GTOTAL, *layout.carry_overs, *layout.days]
    return history.columns.is_unique and all(is_day_column(d) for d in layout.days) and _all_int64(history, counts)


def _apply_on_arrays(history: pd.DataFrame, totals: pd.DataFrame, as_of: date, profiles: pd.DataFrame) -> Merged:
    """The same merge with every count in one column-major int64 matrix: one copy of the history in all."""
    layout = HistoryLayout.of(history.columns)
    days, _ = _day_plan(layout, as_of)
    day = day_column(as_of)
    placed, counted = {*layout.days, *layout.trailing}, {*WINDOWS, GTOTAL, *layout.carry_overs, *layout.days}
    names = history.columns.tolist()
    fixed = [c for c in names if c not in placed]
    others = [c for c in names if c not in counted]

    rows, added = _new_school_rows(history, totals, profiles, others)
    base = history[others]
    if rows is not None:
        base = pd.concat([base, rows], ignore_index=True)
    n, total_rows = len(history), len(base)

    position = {d: i for i, d in enumerate(days)}
    values = np.zeros((total_rows, len(days)), dtype=INT64, order="F")
    targets = [position[d] for d in layout.days]
    for start, batch in _column_batches(history, layout.days):
        first, last = targets[start], targets[start + batch.shape[1] - 1]
        if last - first == batch.shape[1] - 1:  # consecutive: a plain slice, copied column by column
            values[:n, first : last + 1] = batch
        else:
            values[:n, targets[start : start + batch.shape[1]]] = batch

    def column(name: str) -> np.ndarray:
        out = np.zeros(total_rows, dtype=INT64)
        out[:n] = history[name].to_numpy()
        return out

    g_total = column(GTOTAL)
    carries = {c: column(c) for c in layout.carry_overs}
    day_sum = values.sum(axis=1)

    # drift: gTotal set to the day columns, the difference onto the latest carry-over
    drift = day_sum - g_total
    bad = np.flatnonzero(drift)
    carry = layout.carry_overs[-1] if layout.carry_overs else None
    repaired = _drift_events(
        base[SCHOOL_ID].to_numpy(),
        base[SCHOOL].to_numpy(),
        bad,
        day_sum,
        g_total,
        carry,
        carries[carry] if carry else None,
    )
    if len(bad):
        g_total[bad] = day_sum[bad]
        if carry:
            carries[carry][bad] += drift[bad]

    carried = sum(carries.values()) if carries else 0
    delta = _delta(base[SCHOOL_ID], pd.Series(g_total - carried, index=base.index), totals)
    values[:, position[day]] += delta.to_numpy()
    g_total += delta.to_numpy()

    counts = {GTOTAL: g_total, **carries}
    for name, positions in _window_columns(days).items():
        counts[name] = values[:, positions].sum(axis=1)
    head = {c: (counts[c] if c in counts else base[c].array) for c in fixed}
    parts = [
        pd.DataFrame(head, index=base.index),
        pd.DataFrame(values, index=base.index, columns=pd.Index(days, dtype=history.columns.dtype), copy=False),
    ]
    if layout.trailing:
        parts.append(base[layout.trailing])
    return pd.concat(parts, axis=1), delta, repaired + added


def name_order(names: np.ndarray, ids: np.ndarray, kept: int) -> np.ndarray:
    """Row order with the rows from ``kept`` on (new schools) placed where they fall in name order.

    The first ``kept`` rows keep their order (the real files are in name order
    but for one renamed school, with ``ADMINISTRATIVE`` first). A new school goes
    before the first kept school, ``ADMINISTRATIVE`` aside, whose name sorts
    after it, so it appears at its place in the front end's "Select a School".
    """
    _, codes = np.unique(np.asarray(names, dtype=str), return_inverse=True)
    codes = codes.astype(INT64) + 1
    existing = np.where(np.asarray(ids[:kept], dtype=str) == ADMINISTRATIVE_ID, 0, codes[:kept])
    before = np.searchsorted(np.maximum.accumulate(existing), codes[kept:], side="right")
    primary = np.concatenate([2 * np.arange(kept) + 1, 2 * before])
    secondary = np.concatenate([np.zeros(kept, dtype=INT64), codes[kept:]])
    return np.lexsort((secondary, primary))


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
    ignored = totals[SCHOOL_ID].isin(ignore_ids).to_numpy()
    if ignored.any():
        totals = totals.loc[~ignored]
    if SCHOOL not in totals:
        totals = totals.assign(**{SCHOOL: pd.NA})
    if profiles is None:
        profiles = pd.DataFrame(columns=[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE])
    history, carried = with_drift_carry_over(history)
    merge = _apply_on_arrays if _vectorisable(history, HistoryLayout.of(history.columns)) else _apply_by_steps
    schools, delta, events = merge(history, totals, as_of, profiles)
    events[:0] = carried
    if len(schools) > len(history):
        order = name_order(schools[SCHOOL].to_numpy(), schools[SCHOOL_ID].to_numpy(), len(history))
        schools = schools.take(order).reset_index(drop=True)
        delta = pd.Series(delta.to_numpy()[order], index=schools.index)

    day = day_column(as_of)
    moved = delta.to_numpy() != 0
    changes = schools.loc[moved, [SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE]].assign(new_cases=delta.to_numpy()[moved])
    events += [
        Event(Tag.CORRECTION, sid, name, f"season total went down by {-n}: applied as {n} on {day}")
        for sid, name, n in zip(changes[SCHOOL_ID], changes[SCHOOL], changes["new_cases"], strict=True)
        if n < 0
    ]
    return MergeResult(schools=schools, day=day, changes=changes.reset_index(drop=True), events=events)


def district_totals(schools: pd.DataFrame) -> pd.DataFrame:
    """``CPStotals.csv`` recomputed from the per-school table, so it can never drift."""
    layout = HistoryLayout.of(schools.columns)
    daily = column_sums(schools, layout.days)
    dates = _dates(layout.days)
    if daily.dtype == INT64 and (np.diff(dates) > np.timedelta64(0, "D")).all():
        # calendar-day windows on sorted dates: a difference of running totals (exact for integers)
        running = daily.to_numpy().cumsum()
        before = np.concatenate(([0], running))
        sums = {n: running - before[np.searchsorted(dates, dates - np.timedelta64(n - 1, "D"))] for n in (7, 14)}
    else:
        daily.index = pd.to_datetime(daily.index, format="%Y%m%d")
        running = daily.cumsum().to_numpy()
        sums = {n: daily.rolling(f"{n}D").sum().astype("int64").to_numpy() for n in (7, 14)}
    return pd.DataFrame(  # keys in the order of TOTALS_COLUMNS
        {
            "date": np.asarray(layout.days, dtype="int64"),
            "daily": daily.to_numpy(),
            "running": running,
            "7DaySum": sums[7],
            "7DayAvg": sums[7] / 7,
            "14DaySum": sums[14],
            "14DayAvg": sums[14] / 14,
        }
    )


def transposed(schools: pd.DataFrame) -> pd.DataFrame:
    """``newFormatTest.csv``: one row per former column, one column per school."""
    flipped = schools.set_index(SCHOOL).T
    clashing = flipped.columns.isin([SCHOOL, "index", "level_0"]).any()
    if flipped.index.name is None and not clashing:
        return flipped.reset_index(names=SCHOOL)  # what the rename below does, without walking every label
    return flipped.reset_index().rename(columns={"index": SCHOOL})
