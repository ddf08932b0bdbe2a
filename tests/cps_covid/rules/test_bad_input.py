"""Every row of docs/bad-input.md, run through the same pipeline as the flow (``cps-covid merge``)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from cps_covid.errors import InputError
from cps_covid.operations.offline import merge_folder

ROOT = Path(__file__).resolve().parents[3]
HISTORY = ROOT / "data/history-2021-09-22"
FEED = (ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()
API = json.loads((ROOT / "data/feeds/2021-09-23-health-api.json").read_text())
IGNORE = frozenset({"610377", "610012", "609703"})


def catalogue() -> list[tuple[str, str, str]]:
    rows = []
    for line in (ROOT / "docs/bad-input.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[a-z][a-z0-9-]+", cells[0]) and cells[0] != "id":
            rows.append((cells[0], cells[2], cells[3]))
    return rows


def csv_lines(*extra: str, base: bytes = FEED) -> bytes:
    return base + "".join(f"{line}\n" for line in extra).encode()


def api(records: list) -> bytes:
    return json.dumps(records).encode()


def edit_history(name: str, edit: Callable[[str], str]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / name
        path.write_text(edit(path.read_text()))

    return apply


def set_cell(school: str, column: str, value: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines()
        header = lines[0].split(",")
        at = header.index(column)
        for i, line in enumerate(lines):
            cells = line.split(",")
            if cells[0] == school:
                cells[at] = value
                lines[i] = ",".join(cells)
        return "\n".join(lines) + "\n"

    return edit


def rename_column(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        header, rest = text.split("\n", 1)
        return ",".join(new if c == old else c for c in header.split(",")) + "\n" + rest

    return edit


def fill_column(column: str, value: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        rows = [line.split(",") for line in text.splitlines()]
        at = rows[0].index(column)
        return "\n".join(",".join([*r[:at], value if n else r[at], *r[at + 1 :]]) for n, r in enumerate(rows)) + "\n"

    return edit


def append_columns(*columns: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines()
        return "\n".join([",".join([lines[0], *columns]), *(line + ",1" * len(columns) for line in lines[1:])]) + "\n"

    return edit


def drop_column(column: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        rows = [line.split(",") for line in text.splitlines()]
        at = rows[0].index(column)
        return "\n".join(",".join(r[:at] + r[at + 1 :]) for r in rows) + "\n"

    return edit


TAFT_ROWS = [line for line in FEED.decode().splitlines() if '"609734"' in line]
CASES: dict[str, tuple[bytes, Callable[[Path], None] | None]] = {
    "feed-empty": (b"", None),
    "feed-blank": (b"\n\n  \n", None),
    "feed-html": (b"<!DOCTYPE html><html><body>Error 502</body></html>", None),
    "feed-xml": (b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>', None),
    "feed-not-utf8": ('"CPS School ID","School"\n"609772","ÉCOLE"\n'.encode("latin-1"), None),
    "feed-csv-cut-in-a-field": (FEED[: FEED.index(b'"609772"') + 4], None),
    "feed-csv-cut-in-a-line": (csv_lines('"09/23/2021","609772"'), None),
    "feed-json-truncated": (api(API)[:500], None),
    "feed-json-object": (b'{"data": []}', None),
    "feed-json-scalar-record": (api([{"SchoolID": 609772, "TotalCaseCount": 1}, 7]), None),
    "feed-json-no-count": (api([{"SchoolID": 609772}]), None),
    "feed-no-id-column": (b'"Result Date","School"\n"09/23/2021","ADDAMS"\n', None),
    "feed-renamed-id-column": (FEED.replace(b'"CPS School ID"', b'"School ID"', 1), None),
    "feed-id-5-digits": (csv_lines('"09/23/2021","61021","X","Student"'), None),
    "feed-id-text": (csv_lines('"09/23/2021","ALBANY","X","Student"'), None),
    "feed-id-fractional": (api([*API, {"SchoolID": 609772.5, "TotalCaseCount": 1}]), None),
    "feed-count-negative": (api([*API, {"SchoolID": 610212, "TotalCaseCount": -4}]), None),
    "feed-count-fractional": (api([*API, {"SchoolID": 610212, "TotalCaseCount": 1.5}]), None),
    "feed-count-text": (api([*API, {"SchoolID": 610212, "TotalCaseCount": "three"}]), None),
    "feed-count-null": (api([*API, {"SchoolID": 610212, "TotalCaseCount": None}]), None),
    "feed-count-absurd": (api([*API, {"SchoolID": 610212, "TotalCaseCount": 10000}]), None),
    "feed-season-absurd": (api([*API, *[{"SchoolID": 610212, "TotalCaseCount": 500}] * 12]), None),
    "feed-season-reset": (b'"CPS School ID"\n"609772"\n"610212"\n', None),
    "feed-empty-list": (b"[]", None),
    "feed-header-only": (b'"Result Date","CPS School ID","School","Role"\n', None),
    "feed-gap": (FEED, None),
    "feed-utf8-bom": (b"\xef\xbb\xbf" + FEED, None),
    "feed-id-padded": (FEED.replace(b'"609772"', b'" 609772 "'), None),
    "feed-rows-without-id": (csv_lines('"09/23/2021","","UNASSIGNED","Adult"', '"09/23/2021","","X","Adult"'), None),
    "feed-duplicate-rows": (FEED, None),
    "feed-ignored-ids": (
        csv_lines('"09/23/2021","610012","NETWORK","Adult"', '"09/23/2021","609703","X","Adult"'),
        None,
    ),
    "feed-unknown-school": (FEED, None),
    "feed-stale": (FEED, None),
    "feed-lower-total": ("\n".join(r for r in FEED.decode().splitlines() if r != TAFT_ROWS[0]).encode() + b"\n", None),
    "feed-outlier": (csv_lines(*['"09/23/2021","610212","ALBANY PARK","Student"'] * 30), None),
    "history-empty": (FEED, edit_history("allCpsCovidData.csv", lambda _: "")),
    "history-not-csv": (
        FEED,
        lambda folder: (folder / "allCpsCovidData.csv").write_bytes(b"\x00\x01\x02PK\x03\x04" * 50),
    ),
    "history-missing-column": (FEED, edit_history("allCpsCovidData.csv", drop_column("gTotal"))),
    "history-no-school-id": (FEED, edit_history("allCpsCovidData.csv", drop_column("CPS_School_ID"))),
    "history-no-21total": (FEED, edit_history("allCpsCovidData.csv", drop_column("21Total"))),
    "history-old-carry-over-name": (
        FEED,
        edit_history("allCpsCovidData.csv", rename_column("preSY2122", "pre829Total")),
    ),
    "history-blank-carry-over": (FEED, edit_history("allCpsCovidData.csv", fill_column("preSY2122", ""))),
    "history-vaccination-after-days": (
        FEED,
        edit_history("allCpsCovidData.csv", append_columns("Student_Count", "Vax_First_Dose", "Vax_Complete")),
    ),
    "history-text-count": (FEED, edit_history("allCpsCovidData.csv", set_cell("ADDAMS", "20210915", "two"))),
    "history-blank-count": (FEED, edit_history("allCpsCovidData.csv", set_cell("ADDAMS", "20210915", ""))),
    "history-duplicate-id": (FEED, edit_history("allCpsCovidData.csv", set_cell("AGASSIZ", "CPS_School_ID", "609772"))),
    "history-outside-chicago": (FEED, edit_history("allCpsCovidData.csv", set_cell("ADDAMS", "Latitude", "48.85"))),
    "history-text-coordinate": (FEED, edit_history("allCpsCovidData.csv", set_cell("ADDAMS", "Latitude", "north"))),
    "history-carry-over-too-big": (FEED, edit_history("allCpsCovidData.csv", set_cell("ADDAMS", "preSY2122", "9"))),
    "history-hand-edited-total": (FEED, edit_history("allCpsCovidData.csv", set_cell("ADDAMS", "gTotal", "5"))),
    "totals-drifted": (FEED, None),
    "totals-missing-column": (FEED, edit_history("CPStotals.csv", drop_column("running"))),
}


RERUNS = {"feed-season-reset", "feed-empty-list", "feed-header-only", "feed-gap"}
"""Refusals that tell the person to run the same command again with an option: the command they ran is named."""


@pytest.mark.parametrize(("case", "outcome", "expected"), catalogue(), ids=[r[0] for r in catalogue()])
def test_catalogued_bad_input(case: str, outcome: str, expected: str, tmp_path: Path) -> None:
    assert case in CASES, f"docs/bad-input.md row {case!r} has no test case"
    feed_bytes, edit = CASES[case]
    folder = tmp_path / "history"
    shutil.copytree(HISTORY, folder)
    if edit:
        edit(folder)
    feed = tmp_path / "feed.csv"
    feed.write_bytes(feed_bytes)
    out = tmp_path / "out"
    as_of = date(2021, 10, 7) if case == "feed-gap" else date(2021, 9, 23)

    if case == "feed-stale":
        merge_folder(folder, feed, as_of, tmp_path / "first", ignore_ids=IGNORE)
        shutil.copy(tmp_path / "first/allCpsCovidData.csv", folder / "allCpsCovidData.csv")
        shutil.copy(tmp_path / "first/CPStotals.csv", folder / "CPStotals.csv")

    if outcome.startswith("refused"):
        with pytest.raises(InputError) as refused:
            merge_folder(folder, feed, as_of, out, ignore_ids=IGNORE)
        assert "cps-covid merge --history" in str(refused.value) or case not in RERUNS
        assert expected in str(refused.value)
        assert str(feed) in str(refused.value) or str(folder) in str(refused.value) or "feed" in str(refused.value)
        assert not out.exists()
    else:
        publication = merge_folder(folder, feed, as_of, out, ignore_ids=IGNORE)
        result = publication.result
        said = [f"{result.net_cases} new case(s)", *map(str, result.events), *publication.warnings]
        assert any(expected in text for text in said), said
        assert (out / "allCpsCovidData.csv").exists()


def test_the_catalogue_has_at_least_thirty_kinds() -> None:
    assert len(catalogue()) >= 30
    assert {c for c, _, _ in catalogue()} == set(CASES)
