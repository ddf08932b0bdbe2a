"""Apply a fresh feed to the per-school history: pure functions of DataFrames.

No I/O and no Prefect here, so the whole merge is testable in milliseconds and
benchmarkable at any size. Every change that is not plain new cases (a drift
repair, a correction, a school added) is returned as an explained event.

Memory: the history is never copied whole more than once. ``apply_feed`` reads
each day column once into one new column-major int64 matrix (the output's day
columns, with room for new days and new schools) and does the arithmetic there;
sums over many columns read them one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

import numpy as np
import pandas as pd

from cps_covid.rules.schema import (
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
)

INT64 = np.dtype("int64")
SEASON_TOTAL = "season total"
"""What a correction changed: a school's season total (``gTotal`` minus its carry-overs), as the feed reports it."""


class Tag(StrEnum):
    """What kind of correction or notable change an ``Event`` reports (its text says what, where and why)."""

    DRIFT_REPAIR = "drift-repair"
    """``gTotal`` disagreed with the day columns: set to their sum, the difference kept in a carry-over."""
    DRIFT_KEPT = "drift-kept"
    """``gTotal`` disagrees with the day columns in a history with no carry-over column: kept as the district
    confirmed it (no column the front end does not know is added); the first season close moves it onto its
    carry-over."""
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
    TOTALS_DATES_DROPPED = "totals-dates-dropped"
    """``CPStotals.csv`` had dates the per-school table has no column for: named, not carried over (the district
    totals are recomputed from the per-school table, which has no school's count for them)."""
    OUTLIER = "outlier"
    """A school's new cases stand far above its trailing weeks: flagged, never dropped."""
    DISTRICT_JUMP = "district-jump"
    """The district's day stands far above its trailing weeks: flagged, never dropped."""


@dataclass(frozen=True)
class Event:
    """A data correction or notable change, tagged so it can be filtered and explained.

    ``school_id`` is ``"*"`` and ``school`` ``"DISTRICT"`` for an event about the whole table. ``cases`` and
    ``day`` are the count and the day column it is about, where it is about one (a correction's negative
    difference, an outlier's cases): the mail and the artifact read them, never the text."""

    tag: Tag
    school_id: str
    school: str
    detail: str
    cases: int | None = None
    day: str | None = None
    field: str | None = None
    """The value it changed or found wrong (``gTotal``, ``season total``), with ``old`` and ``new``: the open
    dataset's errata table reads them."""
    old: int | None = None
    new: int | None = None

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
    kept_drift: dict[str, int] = field(default_factory=dict)
    """School id -> ``gTotal`` minus its day columns, where a history with no carry-over had drift: kept, not
    repaired (``Tag.DRIFT_KEPT``), and allowed by the published table's check."""

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

    @property
    def corrections(self) -> list[Event]:
        """The cases the district removed, one event per school, in the order of ``changes``."""
        return [e for e in self.events if e.tag is Tag.CORRECTION]

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


# --- sums over many columns ----------------------------------------------------------------------------------------


def row_sums(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """``frame[columns].sum(axis=1)``, zero when there are no columns."""
    return pd.Series(frame[columns].to_numpy(dtype=INT64).sum(axis=1), index=frame.index)


def column_sums(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """``frame[columns].sum(axis=0)``."""
    return pd.Series(frame[columns].to_numpy(dtype=INT64).sum(axis=0), index=pd.Index(columns))


def window_sums(schools: pd.DataFrame) -> dict[str, pd.Series]:
    """``7Total``/``14Total``/``21Total`` as the day columns give them (none when there are no day columns)."""
    days = HistoryLayout.of(schools.columns).days
    if not days:
        return {}
    return {name: row_sums(schools, [days[i] for i in at]) for name, at in _window_positions(days).items()}


def recompute_windows(schools: pd.DataFrame) -> pd.DataFrame:
    """7/14/21-day totals by calendar day, ending at the latest day column."""
    return schools.assign(**window_sums(schools))


def _window_positions(days: list[str]) -> dict[str, np.ndarray]:
    """Positions (in ``days``) of the day columns inside each 7/14/21-day window ending at the latest day."""
    dates = _dates(days)
    end = dates.max()
    return {column: np.flatnonzero(dates > end - np.timedelta64(length, "D")) for column, length in WINDOWS.items()}


def _dates(days: list[str]) -> np.ndarray:
    """``YYYYMMDD`` day column names as ``datetime64[D]``."""
    return np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in days], dtype="datetime64[D]")


# --- the merge, step by step --------------------------------------------------------------------------------------


def _require_int64_counts(history: pd.DataFrame, layout: HistoryLayout) -> None:
    """The merge reads each count column as int64 by name: ``history.typed_schools`` makes them so."""
    if not history.columns.is_unique:
        raise ValueError(f"history has duplicate column names: {history.columns[history.columns.duplicated()]}")
    counts = [*WINDOWS, GTOTAL, *layout.carry_overs, *layout.days]
    dtypes = dict(zip(history.columns, history.dtypes, strict=True))
    untyped = [c for c in counts if dtypes[c] != INT64]
    if untyped:
        raise ValueError(f"history count column(s) not int64 (type them with typed_schools): {untyped[:5]}")


def _days_through(layout: HistoryLayout, as_of: date) -> list[str]:
    """The day columns once ``as_of`` and the days between the history's last day and it are added."""
    wanted = {day_column(as_of)}
    if layout.days:
        last = column_day(layout.days[-1])
        wanted |= {day_column(last + timedelta(days=i)) for i in range(1, (as_of - last).days)}
    return sorted({*layout.days, *wanted})


def _new_school_rows(
    history: pd.DataFrame, totals: pd.DataFrame, profiles: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame | None, list[Event]]:
    """Rows (only ``columns``, typed like ``history``) for ids seen for the first time, with their events.

    A school without a profile keeps the feed's name (or ``SCHOOL <id>``) and no
    coordinates. Names are written as the history writes them (upper case, ``-``
    without spaces).
    """
    unseen = ~totals[SCHOOL_ID].isin(history[SCHOOL_ID]).to_numpy()
    if not unseen.any():
        return None, []
    columns_of = (profiles[c].tolist() for c in (SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE))
    known = {sid: (name, lat, lon) for sid, name, lat, lon in zip(*columns_of, strict=True) if isinstance(name, str)}
    found: dict[str, list] = {SCHOOL_ID: [], SCHOOL: [], LATITUDE: [], LONGITUDE: []}
    events = []
    for school_id, feed_name in zip(totals[SCHOOL_ID][unseen], totals[SCHOOL][unseen], strict=True):
        profile = known.get(school_id)
        name, latitude, longitude = profile or (
            feed_name if isinstance(feed_name, str) else f"SCHOOL {school_id}",
            np.nan,
            np.nan,
        )
        name = name.upper().replace(" - ", "-")
        for column, value in ((SCHOOL_ID, school_id), (SCHOOL, name), (LATITUDE, latitude), (LONGITUDE, longitude)):
            found[column].append(value)
        if profile:
            detail = "first seen in the feed, added from its school profile"
            events.append(Event(Tag.SCHOOL_ADDED, school_id, name, detail))
        else:
            detail = "no school profile found: kept with its id, no coordinates"
            events.append(Event(Tag.SCHOOL_ADDED_WITHOUT_PROFILE, school_id, name, detail))
    dtypes = dict(zip(history.columns, history.dtypes, strict=True))
    zeros = [0] * len(found[SCHOOL_ID])
    rows = pd.DataFrame({c: pd.Series(found.get(c, zeros), dtype=dtypes[c]) for c in columns})
    return rows, events


def _day_matrix(history: pd.DataFrame, history_days: list[str], days: list[str], rows: int) -> np.ndarray:
    """Every day column in one column-major int64 matrix (``rows`` long, new days and new schools zero)."""
    values = np.zeros((rows, len(days)), dtype=INT64, order="F")
    position = {d: i for i, d in enumerate(days)}
    values[: len(history), [position[d] for d in history_days]] = history[history_days].to_numpy(dtype=INT64)
    return values


def _padded(column: pd.Series, rows: int) -> np.ndarray:
    """A count column as a new int64 array, zero for the new schools after it."""
    out = np.zeros(rows, dtype=INT64)
    out[: len(column)] = column.to_numpy()
    return out


def _drift_events(
    ids: np.ndarray,
    names: np.ndarray,
    rows: np.ndarray,
    day_sum: np.ndarray,
    totals: np.ndarray,
    carry: str | None,
    carried: np.ndarray | None,
) -> list[Event]:
    """A repair onto the latest carry-over; with none, the drift kept where it is (never a new column: the front
    end reads ``newFormatTest.csv`` by row position, and one more row would move every day)."""
    events = []
    for at in rows:
        old_total, old_carry = totals[at], carried[at] if carried is not None else 0
        drift = day_sum[at] - old_total
        if carry is None:
            detail = (
                f"day columns sum to {day_sum[at]} but {GTOTAL} is {old_total}; {GTOTAL} kept as the district "
                "confirmed it (the history has no carry-over column to hold the difference: the first season "
                "close moves it there)"
            )
            events.append(
                Event(Tag.DRIFT_KEPT, ids[at], names[at], detail, field=GTOTAL, old=int(old_total), new=int(old_total))
            )
            continue
        detail = f"day columns sum to {day_sum[at]} but {GTOTAL} was {old_total}; {GTOTAL} set to {day_sum[at]}"
        detail += f" and {carry} from {old_carry} to {old_carry + drift}, season total unchanged"
        events.append(
            Event(Tag.DRIFT_REPAIR, ids[at], names[at], detail, field=GTOTAL, old=int(old_total), new=int(day_sum[at]))
        )
    return events


def _new_cases(ids: pd.Series, season: np.ndarray, totals: pd.DataFrame) -> np.ndarray:
    """New cases per school: the feed's season total minus the season the history counts (0 when absent)."""
    at = pd.Index(totals[SCHOOL_ID]).get_indexer(ids)  # the feed's totals hold each id once (grouped)
    reported = np.append(totals["season_total"].to_numpy(dtype=INT64), 0)  # at == -1 reads the 0
    return np.where(at >= 0, reported[at] - season, 0)


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

    The steps: add the day columns up to ``as_of`` and the new schools, repair
    drift (``gTotal`` set to its day columns, the difference kept on the latest
    carry-over; with no carry-over, ``gTotal`` kept and the drift reported),
    add the new cases, recompute the windows, then place new
    schools in name order. The counts are copied once, into one int64 matrix;
    the other columns are shared with ``history``.
    """
    totals = totals.loc[~totals[SCHOOL_ID].isin(ignore_ids)]
    if SCHOOL not in totals:
        totals = totals.assign(**{SCHOOL: pd.Series(pd.NA, index=totals.index, dtype=object)})
    if profiles is None:
        profiles = pd.DataFrame(columns=[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE])
    events: list[Event] = []
    layout = HistoryLayout.of(history.columns)
    _require_int64_counts(history, layout)
    day, days = day_column(as_of), _days_through(layout, as_of)
    counted = {*WINDOWS, GTOTAL, *layout.carry_overs, *layout.days}
    others = [c for c in history.columns if c not in counted]

    new_rows, added = _new_school_rows(history, totals, profiles, others)
    base = history[others] if new_rows is None else pd.concat([history[others], new_rows], ignore_index=True)
    rows = len(base)
    values = _day_matrix(history, layout.days, days, rows)
    g_total = _padded(history[GTOTAL], rows)
    carries = {c: _padded(history[c], rows) for c in layout.carry_overs}

    day_sum = values.sum(axis=1)
    drifted = np.flatnonzero(day_sum != g_total)
    carry = layout.carry_overs[-1] if layout.carry_overs else None
    ids, names = base[SCHOOL_ID].to_numpy(), base[SCHOOL].to_numpy()
    events += _drift_events(ids, names, drifted, day_sum, g_total, carry, carries[carry] if carry else None)
    kept_drift: dict[str, int] = {}
    if carry:
        carries[carry][drifted] += day_sum[drifted] - g_total[drifted]
        g_total[drifted] = day_sum[drifted]
    else:
        kept_drift = {str(ids[at]): int(g_total[at] - day_sum[at]) for at in drifted}

    season = g_total - sum(carries.values(), np.zeros(rows, dtype=INT64))
    delta = _new_cases(base[SCHOOL_ID], season, totals)
    values[:, days.index(day)] += delta
    g_total += delta
    events += added

    counts = {GTOTAL: g_total, **carries}
    counts |= {name: values[:, at].sum(axis=1) for name, at in _window_positions(days).items()}
    placed = {*layout.days, *layout.trailing}
    head = {c: counts[c] if c in counts else base[c].array for c in history.columns if c not in placed}
    schools = pd.concat(
        [
            pd.DataFrame(head, index=base.index),
            pd.DataFrame(values, index=base.index, columns=pd.Index(days, dtype=history.columns.dtype), copy=False),
            base[layout.trailing],
        ],
        axis=1,
    )
    if rows > len(history):
        order = name_order(names, ids, len(history))
        schools, delta = schools.take(order).reset_index(drop=True), delta[order]

    moved = delta != 0
    changes = schools.loc[moved, [SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE]].assign(new_cases=delta[moved])
    season_now = schools.loc[moved, GTOTAL] - row_sums(schools.loc[moved], layout.carry_overs)
    events += [
        Event(
            Tag.CORRECTION,
            sid,
            name,
            f"season total went down by {-n}: applied as {n} on {day}",
            int(n),
            day,
            field=SEASON_TOTAL,
            old=int(now - n),
            new=int(now),
        )
        for sid, name, n, now in zip(changes[SCHOOL_ID], changes[SCHOOL], changes["new_cases"], season_now, strict=True)
        if n < 0
    ]
    return MergeResult(
        schools=schools, day=day, changes=changes.reset_index(drop=True), events=events, kept_drift=kept_drift
    )


def district_totals(schools: pd.DataFrame) -> pd.DataFrame:
    """``CPStotals.csv`` recomputed from the per-school table, so it can never drift.

    The 7- and 14-day sums are by calendar day: a difference of running totals
    (exact for integers), the day columns being in date order.
    """
    days = HistoryLayout.of(schools.columns).days
    daily = column_sums(schools, days).to_numpy()
    dates = _dates(days)
    if (np.diff(dates) <= np.timedelta64(0, "D")).any():
        raise ValueError(f"day columns are not in date order: {days[:3]}...")
    running = daily.cumsum()
    before = np.concatenate(([0], running))
    sums = {n: running - before[np.searchsorted(dates, dates - np.timedelta64(n - 1, "D"))] for n in (7, 14)}
    return pd.DataFrame(  # keys in the order of TOTALS_COLUMNS
        {
            "date": np.asarray(days, dtype="int64"),
            "daily": daily,
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
    return flipped.reset_index(names=SCHOOL, allow_duplicates=True)
