"""Read the published tables and describe them for validation (pure, no I/O)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np
import pandas as pd

from cps_covid.errors import InputError
from cps_covid.merge import row_sums, window_sums
from cps_covid.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID, TOTALS_COLUMNS, WINDOWS, HistoryLayout

ROW = "_row"
FLOAT_FORMAT = "{:.10g}"
INT64 = np.dtype("int64")
FLOAT64 = np.dtype("float64")
OBJECT = np.dtype("object")
FAST_CSV_MIN_CELLS = 20_000
"""Below this many int64 cells ``csv_bytes`` lets pandas write the whole table (same bytes either way)."""
BATCH_CELLS = 1 << 20
"""Cells formatted at a time by the int64 writer (bounded memory at any table size)."""
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


def school_checks(schools: pd.DataFrame) -> pd.DataFrame:
    """What the history suite looks at: identity, location and the totals' arithmetic per school."""
    layout = HistoryLayout.of(schools.columns)
    checks = schools[[SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID, *WINDOWS, GTOTAL]].copy()
    checks.insert(0, ROW, schools.index + 2)
    checks["day_sum"] = row_sums(schools, layout.days)
    checks["carry_over_sum"] = row_sums(schools, layout.carry_overs) if layout.carry_overs else 0
    checks["season_total"] = checks[GTOTAL] - checks["carry_over_sum"]
    checks["latest_day"] = layout.days[-1] if layout.days else ""
    # the windows as their day columns give them: with corrections (negative cells) 14Total may be below 7Total
    for column, values in (window_sums(schools) or {c: 0 for c in WINDOWS}).items():
        checks[f"days_{column}"] = values
    return checks


def totals_checks(published: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """``CPStotals.csv`` beside the same figures recomputed from the per-school table."""
    from cps_covid.merge import district_totals

    recomputed = district_totals(schools).set_index("date")
    checks = published.copy()
    checks.insert(0, ROW, published.index + 2)
    dates = published["date"].astype("int64")
    for column in ("daily", "running"):
        checks[f"recomputed_{column}"] = dates.map(recomputed[column]).astype("Int64")
    return checks


def _float(x: float) -> str:
    return FLOAT_FORMAT.format(round(x, 9))


def _pandas_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, float_format=_float).encode()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise the way the published files are written (floats like the real ``CPStotals.csv``).

    The bytes are those of ``frame.to_csv(index=False, float_format=...)``. Runs of
    int64 columns (the day columns: almost every cell) are formatted by numpy,
    ten times faster than pandas' writer; the other columns are still written by
    pandas, and the whole table is, whenever a quoted field makes lines ambiguous.
    """
    rows, columns = frame.shape
    ints = [i for i, t in enumerate(frame.dtypes) if t == INT64]
    if rows == 0 or len(ints) * rows < FAST_CSV_MIN_CELLS or isinstance(frame.columns, pd.MultiIndex):
        return _pandas_csv(frame)
    parts: list[list[bytes] | _IntRows] = []
    start = 0
    for run in _int_runs(ints):
        if run[0] > start:
            lines = _pandas_lines(frame.iloc[:, start : run[0]], rows)
            if lines is None:
                return _pandas_csv(frame)
            parts.append(lines)
        parts += _digit_runs(frame, run)
        start = run[-1] + 1
    if start < columns:
        lines = _pandas_lines(frame.iloc[:, start:], rows)
        if lines is None:
            return _pandas_csv(frame)
        parts.append(lines)
    out = io.BytesIO()
    out.write(frame.iloc[:0].to_csv(index=False).encode())
    for first in range(0, rows, _batch_rows(columns)):
        last = min(rows, first + _batch_rows(columns))
        chunks = [p[first:last] if isinstance(p, list) else p.rows(first, last) for p in parts]
        out.write(b"\n".join(b",".join(fields) for fields in zip(*chunks, strict=True)))
        out.write(b"\n")
    return out.getvalue()


def _batch_rows(columns: int) -> int:
    return max(1, BATCH_CELLS // max(1, columns))


def _int_runs(positions: list[int]) -> Iterator[list[int]]:
    """Consecutive column positions, grouped."""
    run: list[int] = []
    for at in positions:
        if run and at != run[-1] + 1:
            yield run
            run = []
        run.append(at)
    if run:
        yield run


def _pandas_lines(frame: pd.DataFrame, rows: int) -> list[bytes] | None:
    """Each row of ``frame`` as pandas writes it, or None when a quoted field could hide a line break."""
    text = frame.to_csv(index=False, header=False, float_format=_float).encode()
    if b'"' in text:
        return None
    lines = text.split(b"\n")
    if len(lines) != rows + 1 or lines[-1]:
        return None
    return lines[:-1]


class _IntRows:
    """int64 columns of a table, formatted a batch of rows at a time when asked."""

    def __init__(self, frame: pd.DataFrame, positions: list[int], small: bool) -> None:
        self.frame, self.positions, self.small = frame, positions, small

    def rows(self, first: int, last: int) -> list[bytes]:
        values = self.frame.iloc[first:last, self.positions[0] : self.positions[-1] + 1].to_numpy(dtype=INT64)
        return format_int_rows(values, small=self.small)


def _digit_runs(frame: pd.DataFrame, run: list[int]) -> list[_IntRows]:
    """Split a run of int64 columns where it changes between single-digit columns and wider ones."""
    small = np.empty(len(run), dtype=bool)
    step = max(1, BATCH_CELLS // len(frame))
    for at in range(0, len(run), step):
        values = frame.iloc[:, run[at] : run[min(len(run), at + step) - 1] + 1].to_numpy(dtype=INT64)
        small[at : at + values.shape[1]] = (values.min(axis=0) >= 0) & (values.max(axis=0) <= 9)
    runs, begin = [], 0
    for end in range(1, len(run) + 1):
        if end == len(run) or small[end] != small[begin]:
            runs.append(_IntRows(frame, run[begin:end], bool(small[begin])))
            begin = end
    return runs


def format_int_rows(values: np.ndarray, *, small: bool = False) -> list[bytes]:
    """Each row of a 2-D int64 array as ``str(v)`` joined by commas, as the csv module writes it.

    ``small``: every value is known to be a single digit 0-9 (two bytes a cell, no
    digit counting). Otherwise digits are laid out right-aligned in fixed-width
    cells and the padding squeezed out.
    """
    rows, columns = values.shape
    if small:
        text = np.empty((rows, 2 * columns), dtype=np.uint8)
        text[:, 0::2] = values
        text[:, 0::2] += ord("0")
        text[:, 1::2] = ord(",")
        flat = text.tobytes()
        width = 2 * columns
        return [flat[i * width : (i + 1) * width - 1] for i in range(rows)]
    negative = values < 0
    magnitude = values.astype(np.uint64)
    np.negative(magnitude, out=magnitude, where=negative)  # two's complement: |v| even for the smallest int64
    digits = np.ones(values.shape, dtype=np.int8)
    bound = 10
    while bound < 2**64:
        longer = magnitude >= np.uint64(bound)
        if not longer.any():
            break
        digits += longer
        bound *= 10
    widths = digits + negative
    cell = int(widths.max()) + 1
    text = np.zeros((rows, columns, cell), dtype=np.uint8)
    rest = magnitude.copy()
    for place in range(int(digits.max())):
        digit = (rest % np.uint64(10)).astype(np.uint8) + np.uint8(ord("0"))
        text[:, :, cell - 2 - place] = np.where(digits > place, digit, 0)
        rest //= np.uint64(10)
    if negative.any():
        r, c = np.nonzero(negative)
        text[r, c, cell - 2 - digits[r, c]] = ord("-")
    text[:, :, cell - 1] = ord(",")
    flat = text[text != 0].tobytes()
    ends = np.cumsum((widths.astype(np.int64) + 1).sum(axis=1))
    starts = np.concatenate(([0], ends[:-1]))
    return [flat[a : b - 1] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _csv_line(fields: list[object]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue().encode()


def transposed_csv_bytes(schools: pd.DataFrame) -> bytes:
    """``csv_bytes(merge.transposed(schools))`` written straight from the per-school table.

    Transposing a mixed table makes every cell a Python object (8 bytes of
    pointer each, and pandas then formats objects one by one); here each former
    column is written as one line instead, its int64 values formatted by numpy.
    """
    from cps_covid.merge import transposed

    names = schools[SCHOOL] if SCHOOL in schools.columns else None
    rest = [c for c in schools.columns if c != SCHOOL]
    kinds = [schools.dtypes[c] for c in rest] if schools.columns.is_unique else []
    plain = (
        names is not None
        and schools.columns.is_unique
        and len(schools) > 0
        and all(isinstance(c, str) and c for c in schools.columns)
        and all(isinstance(n, str) for n in names)
        and "index" not in set(names)
        # a text column makes the transposed table object-typed (so floats are written as repr, not float_format)
        and any(k == OBJECT or isinstance(k, pd.StringDtype) for k in kinds)
        and all(k in (INT64, FLOAT64, OBJECT) or isinstance(k, pd.StringDtype) for k in kinds)
    )
    if not plain or len(schools) * sum(k == INT64 for k in kinds) < FAST_CSV_MIN_CELLS:
        return csv_bytes(transposed(schools))
    out = io.BytesIO()
    out.write(_csv_line([SCHOOL, *names]))
    batch: list[str] = []

    def flush() -> None:
        for start in range(0, len(batch), max(1, BATCH_CELLS // len(schools))):
            chunk = batch[start : start + max(1, BATCH_CELLS // len(schools))]
            lines = format_int_rows(schools[chunk].to_numpy(dtype=INT64).T)
            for column, line in zip(chunk, lines, strict=True):
                out.write(_csv_line([column, ""])[:-1] + line + b"\n")
        batch.clear()

    for column, kind in zip(rest, kinds, strict=True):
        if kind == INT64:
            batch.append(column)
            continue
        flush()
        values = np.array(schools[column].to_numpy(dtype=object), dtype=object)
        values[pd.isna(values)] = ""
        out.write(_csv_line([column, *values]))
    flush()
    return out.getvalue()


__all__ = [
    "TOTALS_COLUMNS",
    "csv_bytes",
    "non_integer_cells",
    "read_table",
    "school_checks",
    "totals_checks",
    "transposed_csv_bytes",
    "typed_schools",
]
