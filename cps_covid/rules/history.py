"""Read the published tables and describe them for validation (pure, no I/O)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import cast

import numpy as np
import pandas as pd

from cps_covid.errors import InputError
from cps_covid.rules.merge import row_sums, window_sums
from cps_covid.rules.schema import (
    GTOTAL,
    LATITUDE,
    LONGITUDE,
    SCHOOL,
    SCHOOL_ID,
    TOTALS_COLUMNS,
    WINDOWS,
    HistoryLayout,
)

ROW = "_row"
FLOAT_FORMAT = "{:.10g}"
INT64 = np.dtype("int64")
CONSOLIDATE_CELLS = 1 << 22
"""``typed_schools`` copies tables up to this size into one block per dtype."""


def read_table(payload: bytes, name: str) -> pd.DataFrame:
    """A published CSV with its ids kept as text; an unreadable file is an ``InputError``."""
    if not payload.strip():
        raise InputError(f"{name}: the file is empty")
    try:
        frame = pd.read_csv(io.BytesIO(payload), dtype={SCHOOL_ID: "str", SCHOOL: "str"})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{name}: not a readable CSV file ({str(err).strip()})") from None
    return frame


def count_columns(schools: pd.DataFrame) -> list[str]:
    layout = HistoryLayout.of(schools.columns)
    return [*WINDOWS, GTOTAL, *layout.carry_overs, *layout.days]


def require_columns(frame: pd.DataFrame, name: str, required: list[str]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"{name}: line 1: missing column(s) {', '.join(missing)} (found {list(frame.columns)[:12]})")


def non_integer_cells(schools: pd.DataFrame) -> pd.DataFrame:
    """Count cells that are not whole numbers, one row each: ``_row``, ``column``, ``value``."""
    parts = []
    for column in count_columns(schools):
        values = schools[column]
        if pd.api.types.is_integer_dtype(values):
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() | (numbers != numbers.round())
        parts.append(
            pd.DataFrame({ROW: schools.index[bad] + 2, "column": column, "value": values[bad].astype("str").fillna("")})
        )
    if not parts:
        return pd.DataFrame(
            {ROW: pd.Series(dtype="int64"), "column": pd.Series(dtype="str"), "value": pd.Series(dtype="str")}
        )
    return pd.concat(parts, ignore_index=True)


def typed_schools(schools: pd.DataFrame, name: str = "history") -> pd.DataFrame:
    """Counts as int64 once ``non_integer_cells`` found nothing; a coordinate that is not a number stops."""
    for column in (LATITUDE, LONGITUDE):
        text = schools[column]
        bad = pd.to_numeric(text, errors="coerce").isna() & text.notna()
        if bad.any():
            row = schools.index[bad][0]
            raise InputError(f"{name}: line {row + 2}: {column} is {text[row]!r}, not a number")
    wanted = {c: INT64 for c in count_columns(schools)} | {
        LATITUDE: np.dtype("float64"),
        LONGITUDE: np.dtype("float64"),
    }
    current = dict(zip(schools.columns, schools.dtypes, strict=True))
    changing = {c: t for c, t in wanted.items() if current[c] != t}
    typed = schools.astype(changing) if changing else schools
    if typed.size <= CONSOLIDATE_CELLS:
        # one block per dtype (read_csv leaves one per column): the merge and the writer then read hundreds
        # of columns in one step instead of one pandas call each. Larger tables are read a batch of columns
        # at a time anyway, where the per-call cost does not show, and are not worth a second copy in memory.
        return typed.copy()
    return typed


def school_checks(schools: pd.DataFrame, kept_drift: Mapping[str, int] | None = None) -> pd.DataFrame:
    """What the history suite looks at: identity, location and the totals' arithmetic per school.

    ``counted_total``: the day columns plus the drift the merge kept (``MergeResult.kept_drift``, a history
    with no carry-over): what ``gTotal`` must be in a published table.
    """
    layout = HistoryLayout.of(schools.columns)
    checks = schools[[SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID, *WINDOWS, GTOTAL]].copy()
    checks.insert(0, ROW, schools.index + 2)
    checks["day_sum"] = row_sums(schools, layout.days)
    kept = schools[SCHOOL_ID].map(dict(kept_drift or {})).fillna(0).astype("int64")
    checks["counted_total"] = checks["day_sum"] + kept
    checks["carry_over_sum"] = row_sums(schools, layout.carry_overs) if layout.carry_overs else 0
    checks["season_total"] = checks[GTOTAL] - checks["carry_over_sum"]
    checks["latest_day"] = layout.days[-1] if layout.days else ""
    # the windows as their day columns give them: with corrections (negative cells) 14Total may be below 7Total
    windows = window_sums(schools)
    for column in WINDOWS:
        checks[f"days_{column}"] = windows[column] if windows else 0
    return checks


def totals_checks(published: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """``CPStotals.csv`` beside the same figures recomputed from the per-school table."""
    from cps_covid.rules.merge import district_totals

    recomputed = district_totals(schools).set_index("date")
    checks = published.copy()
    checks.insert(0, ROW, published.index + 2)
    dates = published["date"].astype("int64")
    for column in ("daily", "running"):
        checks[f"recomputed_{column}"] = dates.map(recomputed[column]).astype("Int64")
    return checks


def totals_dates_without_a_day_column(totals: pd.DataFrame, schools: pd.DataFrame) -> list[str]:
    """``CPStotals.csv`` dates (``YYYYMMDD``) the per-school table has no day column for, in file order."""
    days = set(HistoryLayout.of(schools.columns).days)
    return [str(d) for d in totals["date"].tolist() if str(d) not in days]


def _float(x: object) -> str:
    """``to_csv``'s float_format, which it calls with the float cells only."""
    return FLOAT_FORMAT.format(round(cast(float, x), 9))


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise the way the published files are written: pandas' writer, floats like the real ``CPStotals.csv``."""
    return frame.to_csv(index=False, float_format=_float).encode()


def transposed_csv_bytes(schools: pd.DataFrame) -> bytes:
    """``newFormatTest.csv``: the per-school table transposed (a school per column), written like the others."""
    from cps_covid.rules.merge import transposed

    return csv_bytes(transposed(schools))


__all__ = [
    "TOTALS_COLUMNS",
    "csv_bytes",
    "non_integer_cells",
    "read_table",
    "school_checks",
    "totals_checks",
    "totals_dates_without_a_day_column",
    "transposed_csv_bytes",
    "typed_schools",
]
