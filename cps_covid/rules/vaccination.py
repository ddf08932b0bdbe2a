"""The daily vaccination and enrolment feed and its three columns in the per-school table (pure).

The feed (``cps/SchoolCOVIDStudentVaccinationRate``) is a JSON list with
``SchoolID``, ``OverallStudentCount``, ``OverallOneDoseCount`` and
``OverallCompletedCount``; a null count means the district has none: 0. The
figures go to ``Student_Count``, ``Vax_Complete`` and ``Vax_First_Dose``, where
``schema.front_end_columns`` puts them (after ``CPS_School_ID``: the front end
reads them as rows 3-5 of ``newFormatTest.csv``); no case column is read or
changed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cps_covid.rules.feed import feed_text, json_records, raw
from cps_covid.rules.merge import Event
from cps_covid.rules.migration import to_current_layout
from cps_covid.rules.schema import SCHOOL_ID, VACCINATION_COLUMNS, HistoryLayout
from cps_covid.rules.validation import ValidationFailed, ValidationReport, validate

ID_FIELD = "SchoolID"
FIELDS = {
    "OverallStudentCount": "Student_Count",
    "OverallCompletedCount": "Vax_Complete",
    "OverallOneDoseCount": "Vax_First_Dose",
}
COLUMNS = VACCINATION_COLUMNS
ROW = "_row"
SUITE = "vaccination_feed"


def parse_feed(payload: bytes, name: str) -> pd.DataFrame:
    """Rows as text (null as ``0``) for validation: ``_row``, ``CPS_School_ID``, the columns, ``<column>_number``."""
    records = json_records(feed_text(payload, name), name, (ID_FIELD, *FIELDS))
    rows: dict[str, list] = {ROW: list(range(1, len(records) + 1)), SCHOOL_ID: [raw(r[ID_FIELD]) for r in records]}
    for field, column in FIELDS.items():
        rows[column] = ["0" if r[field] is None else raw(r[field]) for r in records]
    frame = pd.DataFrame(rows).astype({ROW: "int64", SCHOOL_ID: "str", **{c: "str" for c in COLUMNS}})
    for column in COLUMNS:
        frame[f"{column}_number"] = pd.to_numeric(frame[column], errors="coerce")
    return frame


@dataclass
class VaccinationFeed:
    figures: pd.DataFrame
    """``CPS_School_ID`` and the three columns as int64, one row per school."""
    reports: list[ValidationReport]

    @property
    def warnings(self) -> list[str]:
        return [str(w) for r in self.reports for w in r.warnings]


def read_feed(payload: bytes, name: str) -> VaccinationFeed:
    """Parse and validate (suite ``vaccination_feed``); any failure stops before anything is merged."""
    rows = parse_feed(payload, name)
    report = validate(rows, SUITE, name)
    if not report.success:
        raise ValidationFailed([report])
    figures = rows[[SCHOOL_ID, *COLUMNS]].astype({c: "int64" for c in COLUMNS})
    return VaccinationFeed(figures.reset_index(drop=True), [report])


@dataclass
class VaccinationResult:
    schools: pd.DataFrame
    updated: int
    """Schools whose figures changed."""
    unknown_ids: list[str]
    """Schools in the vaccination feed but not (yet) in the case history: left for the case flow to add."""
    missing_ids: list[str]
    """Schools in the history the feed does not list: their figures are kept (0 when there were none)."""
    events: list[Event]
    """The table put into the front end's layout (a file with the columns elsewhere), if it was not."""


def apply_figures(schools: pd.DataFrame, figures: pd.DataFrame) -> VaccinationResult:
    """Set the three columns from the feed; every other column stays exactly as it was."""
    HistoryLayout.of(schools.columns)  # a table without the leading columns is refused here
    by_id = figures.set_index(SCHOOL_ID)
    ids = schools[SCHOOL_ID]
    listed = ids.isin(by_id.index)
    changed = pd.Series(False, index=schools.index)
    values = {}
    for column in COLUMNS:
        fresh = ids.map(by_id[column])
        before = pd.to_numeric(schools[column], errors="coerce") if column in schools else None
        current = before if before is not None else pd.Series(0, index=schools.index)
        after = fresh.where(listed, current)
        after = after.astype("int64") if after.notna().all() else after.astype("Int64")
        values[column] = after
        if before is None:
            changed |= listed
        else:
            changed |= listed & ~(before == after).fillna(False).astype(bool)
    unknown = sorted(set(by_id.index) - set(ids))
    missing = sorted(ids[~listed])
    kept = {c: v for c, v in values.items() if c in schools}
    added = {c: v for c, v in values.items() if c not in schools}
    out = schools.assign(**kept) if kept else schools
    if added:  # one concat, not one insert per column, into a table of hundreds of columns
        out = pd.concat([out, pd.DataFrame(added, index=schools.index)], axis=1)
    out, events = to_current_layout(out, "the per-school table")
    if added:  # the first figures are placed, not moved
        events = []
    return VaccinationResult(out, int(changed.sum()), unknown, missing, events)
