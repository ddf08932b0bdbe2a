"""Turn a payload from the district into feed rows, whichever of its formats it is.

Two formats are known (see the data-model note): the Google Sheet case list as
CSV (one row per case, column ``CPS School ID``) and the CPS health API's JSON
(one object per school and day, ``SchoolID`` and ``TotalCaseCount``). Rows keep
the raw text of every value so validation can quote exactly what was wrong.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import pandas as pd

from cps_covid.errors import InputError
from cps_covid.rules.schema import SCHOOL, SCHOOL_ID

CSV_ID_COLUMN = "CPS School ID"
CSV_NAME_COLUMNS = ("School", "School Name", "SchoolName")
JSON_ID_FIELD = "SchoolID"
JSON_COUNT_FIELD = "TotalCaseCount"
JSON_NAME_FIELD = "SchoolShortName"
ROW = "_row"
"""Where a row came from: the line of a CSV file, the (1-based) record of a JSON list."""


@dataclass(frozen=True)
class FeedRows:
    kind: str
    name: str
    rows: pd.DataFrame
    """``_row``, ``CPS_School_ID``, ``cases`` (raw text), ``cases_number``, ``School``."""


def feed_text(payload: bytes, name: str) -> str:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{name}: not UTF-8 text (byte {err.start}: {payload[err.start : err.start + 4]!r}); "
            "the source may have changed its encoding"
        ) from None
    if not text.strip():
        raise InputError(f"{name}: the feed is empty ({len(payload)} bytes)")
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype", "<html", "<?xml", "<")):
        raise InputError(
            f"{name}: an HTML/XML page, not a feed (starts with {text.lstrip()[:60]!r}); "
            "the source probably answered with an error or login page"
        )
    return text


def parse_feed(payload: bytes, name: str) -> FeedRows:
    """Detect the format by content and return the raw rows."""
    text = feed_text(payload, name)
    if text.lstrip().startswith(("[", "{")):
        return _parse_json(text, name)
    return _parse_csv(text, name)


def _frame(rows: list[int], ids: list[str], cases: list[str], names: list) -> pd.DataFrame:
    frame = pd.DataFrame({ROW: rows, SCHOOL_ID: ids, "cases": cases, SCHOOL: names})
    frame[ROW] = frame[ROW].astype("int64")
    for column in (SCHOOL_ID, "cases"):
        frame[column] = frame[column].astype("str")
    frame["cases_number"] = pd.to_numeric(frame["cases"], errors="coerce")
    return frame


def json_records(text: str, name: str, fields: tuple[str, ...]) -> list[dict]:
    """The records of a JSON list feed, each an object with ``fields``; anything else refused, naming the record.

    The case feed and the vaccination feed are both such lists (the health API's format).
    """
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{name}: malformed JSON at line {err.lineno}, column {err.colno} ({err.msg}); the payload may be truncated"
        ) from None
    if isinstance(records, dict):
        raise InputError(f"{name}: expected a JSON list of records, got an object with keys {sorted(records)[:8]}")
    if not isinstance(records, list):
        raise InputError(f"{name}: expected a JSON list of records, got {type(records).__name__}")
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise InputError(f"{name}: record {number} is {json.dumps(record)[:60]}, not an object")
        missing = [f for f in fields if f not in record]
        if missing:
            raise InputError(
                f"{name}: record {number} has no field {', '.join(missing)} (fields: {sorted(record)[:10]})"
            )
    return records


def _parse_json(text: str, name: str) -> FeedRows:
    records = json_records(text, name, (JSON_ID_FIELD, JSON_COUNT_FIELD))
    return FeedRows(
        "health-api-json",
        name,
        _frame(
            list(range(1, len(records) + 1)),
            [raw(r[JSON_ID_FIELD]) for r in records],
            [raw(r[JSON_COUNT_FIELD]) for r in records],
            [r.get(JSON_NAME_FIELD) for r in records],
        ),
    )


def raw(value: object) -> str:
    """JSON scalars as the text a person would recognise (null, true, 1.5)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _parse_csv(text: str, name: str) -> FeedRows:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        lines = list(reader)
    except csv.Error as err:
        raise InputError(
            f"{name}: malformed CSV near line {reader.line_num} ({err}); the payload may be truncated"
        ) from None
    header = [h.strip() for h in lines[0]]
    if CSV_ID_COLUMN not in header:
        raise InputError(
            f"{name}: line 1: no column {CSV_ID_COLUMN!r} in the header (columns: {header[:10]}); "
            "not a case list this flow knows"
        )
    id_at = header.index(CSV_ID_COLUMN)
    name_at = next((header.index(c) for c in CSV_NAME_COLUMNS if c in header), None)
    rows, ids, names = [], [], []
    for line_no, fields in enumerate(lines[1:], start=2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise InputError(
                f"{name}: line {line_no} has {len(fields)} fields where the header has {len(header)} "
                f"({','.join(fields)[:80]!r}); the payload may be truncated"
            )
        school_id = fields[id_at].strip()
        if not school_id:
            continue
        rows.append(line_no)
        ids.append(school_id)
        names.append(fields[name_at].strip() if name_at is not None else None)
    return FeedRows("case-list-csv", name, _frame(rows, ids, ["1"] * len(rows), names))
