"""Older layouts of the per-school table brought to the current one (pure), each change an explained event.

Whoever adopts this back end starts from the files the dashboard was serving.
Its history (the front end's repository) holds several layouts:

- 2021-01: quarterly columns and no ``CPS_School_ID``: refused, the merge matches
  the feed's schools by id and nothing in the file gives one;
- 2021-02 to 2021-08: ``7Total, 14Total, gTotal``, no ``21Total``, no carry-over:
  ``21Total`` is added, computed from the day columns;
- 2021-09-21: the carry-over ``pre829Total`` (blank in every row): its later name
  is ``preSY2122``; a blank carry-over is refused, since without it the merge
  cannot tell this season's cases from earlier ones;
- from 2021-09-23: the current layout.

"Current" is ``schema.front_end_columns``: the order is applied here too, so a
table with the vaccination columns after the days is put right on its next write.
"""

from __future__ import annotations

import pandas as pd

from cps_covid.errors import InputError
from cps_covid.rules.merge import Event, Tag, window_sums
from cps_covid.rules.schema import (
    GTOTAL,
    IDENTITY_COLUMNS,
    SCHOOL,
    SCHOOL_ID,
    VACCINATION_COLUMNS,
    WINDOWS,
    HistoryLayout,
    front_end_columns,
)

OLD_CARRY_OVER_NAMES = {"pre829Total": "preSY2122"}
"""Carry-over columns the dashboard renamed: everything before 2021-08-30, the first day of SY2122."""


def _event(detail: str) -> Event:
    return Event(Tag.MIGRATION, "*", "DISTRICT", detail)


def to_current_layout(schools: pd.DataFrame, name: str) -> tuple[pd.DataFrame, list[Event]]:
    """The table in the current layout and what was changed to get there; an unmigratable layout stops.

    Columns still missing after this (``School``, ``gTotal``...) are left for the
    caller's column check to name.
    """
    columns = schools.columns.tolist()
    if SCHOOL_ID not in columns and SCHOOL in columns:
        raise InputError(
            f"{name}: line 1: no {SCHOOL_ID} column (found {columns[:10]}): this layout cannot be migrated. "
            f"The merge matches the district's schools by their 6-digit id; add a {SCHOOL_ID} column for every "
            "school (the January 2021 files had none), then rerun"
        )
    events = []
    renamed = {old: new for old, new in OLD_CARRY_OVER_NAMES.items() if old in columns and new not in columns}
    if renamed:
        schools = schools.rename(columns=renamed)
        pairs = ", ".join(f"{old} to {new}" for old, new in renamed.items())
        events.append(_event(f"carry-over column renamed {pairs} (its name in later files), values kept"))
    if SCHOOL_ID not in columns or not all(c in schools.columns for c in (*IDENTITY_COLUMNS, GTOTAL)):
        return schools, events
    missing = [w for w in WINDOWS if w not in schools.columns]
    if missing:
        schools = _with_windows(schools, missing)
        events.append(_event(f"added {', '.join(missing)}, computed from the day columns (an older layout)"))
    _refuse_blank_carry_overs(schools, name, {new: old for old, new in renamed.items()})
    current, order = schools.columns.tolist(), front_end_columns(schools.columns)
    if order != current:
        events.append(_event(f"columns put in the front end's layout ({_moved(current, order)}); no value changed"))
        schools = schools[order]
    return schools, events


def _with_windows(schools: pd.DataFrame, missing: list[str]) -> pd.DataFrame:
    """The missing window columns inserted before ``gTotal``, summed from the day columns as the merge sums them."""
    out = schools.copy()
    for column in missing:
        out.insert(out.columns.tolist().index(GTOTAL), column, 0)
    days = HistoryLayout.of(out.columns).days
    counts = out.assign(**{d: pd.to_numeric(out[d], errors="coerce").fillna(0).astype("int64") for d in days})
    sums = window_sums(counts)
    return out.assign(**{c: sums[c] for c in missing if c in sums})


def _refuse_blank_carry_overs(schools: pd.DataFrame, name: str, old_names: dict[str, str]) -> None:
    for column in HistoryLayout.of(schools.columns).carry_overs:
        blank = schools[column].isna()
        if blank.any():
            lines = ", ".join(str(i + 2) for i in schools.index[blank][:5])
            named = f"{old_names[column]} ({column} in later files)" if column in old_names else column
            raise InputError(
                f"{name}: carry-over column {named} is blank in {int(blank.sum())} of {len(schools)} row(s) "
                f"(line {lines}{', ...' if blank.sum() > 5 else ''}). A carry-over holds each school's cases before "
                "the season the district reports, so without it this season's new cases cannot be told apart: fill "
                f"it in (for a season that ended on the file's last day it is each school's {GTOTAL}) or remove the "
                "column, then rerun"
            )


def _moved(current: list[str], order: list[str]) -> str:
    vaccination = [c for c in VACCINATION_COLUMNS if c in current]
    if vaccination and current[4 : 4 + len(vaccination)] != vaccination:
        return f"{', '.join(vaccination)} moved after {SCHOOL_ID}, before the window columns"
    first = next(c for c, o in zip(current, order, strict=True) if c != o)
    return f"{sum(c != o for c, o in zip(current, order, strict=True))} column(s) reordered, first {first}"
