"""Feed payloads: both formats by content, every unreadable payload refused with its place named."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cps_covid.errors import InputError
from cps_covid.rules import inputs
from cps_covid.rules.feed import ROW, parse_feed
from cps_covid.rules.schema import SCHOOL, SCHOOL_ID
from cps_covid.rules.validation import ValidationFailed

HEADER = '"Result Date","CPS School ID","School","Role"\n'


def case_list(*lines: str) -> bytes:
    return (HEADER + "".join(f"{line}\n" for line in lines)).encode()


def api(*records: dict) -> bytes:
    return json.dumps(list(records)).encode()


@pytest.fixture(scope="module")
def sample_csv(feed_dir) -> bytes:
    return (feed_dir / "2021-09-23-cases.csv").read_bytes()


@pytest.fixture(scope="module")
def sample_json(feed_dir) -> bytes:
    return (feed_dir / "2021-09-23-health-api.json").read_bytes()


# --- formats, chosen by content ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["feed", "feed.json", "export.csv"])
def test_the_format_is_chosen_by_content_not_name(sample_csv, sample_json, name):
    assert parse_feed(sample_csv, name).kind == "case-list-csv"
    assert parse_feed(sample_json, name).kind == "health-api-json"


def test_the_bundled_case_list_keeps_one_row_per_case(sample_csv):
    parsed = parse_feed(sample_csv, "2021-09-23-cases.csv")
    rows = parsed.rows

    assert parsed.name == "2021-09-23-cases.csv"
    assert list(rows.columns) == [ROW, SCHOOL_ID, "cases", SCHOOL, "cases_number"]
    assert (rows["cases"] == "1").all()
    assert (rows["cases_number"] == 1).all()
    assert rows[ROW].iloc[0] == 2  # line 1 is the header
    assert rows[ROW].is_monotonic_increasing
    assert "UNASSIGNED" not in set(rows[SCHOOL])  # its row has no school id
    assert rows[SCHOOL_ID].str.fullmatch(r"\d{6}").all()
    assert (rows[SCHOOL_ID] == "400199").sum() == 2
    assert len(rows) == sample_csv.count(b"\n") - 2  # header and the row without an id


def test_the_bundled_formats_add_up_to_the_same_season_totals(sample_csv, sample_json):
    def totals(payload: bytes) -> pd.Series:
        rows = parse_feed(payload, "feed").rows
        return rows.groupby(SCHOOL_ID)["cases_number"].sum()

    from_csv, from_json = totals(sample_csv), totals(sample_json)
    assert from_csv.pop("610377") == 1  # the network office appears in the case list only
    pd.testing.assert_series_equal(from_csv, from_json)
    assert from_json.sum() == 487 + 20 + 2  # the season so far, 2021-09-23's new cases, the new school


def test_json_records_keep_their_raw_text_and_number():
    rows = parse_feed(
        api(
            {"SchoolID": 609772, "TotalCaseCount": 2, "SchoolShortName": "ADDAMS"},
            {"SchoolID": "610212", "TotalCaseCount": 1.5},
            {"SchoolID": 609695, "TotalCaseCount": None},
            {"SchoolID": 609695, "TotalCaseCount": True},
        ),
        "api.json",
    ).rows
    assert rows[ROW].tolist() == [1, 2, 3, 4]
    assert rows[SCHOOL_ID].tolist() == ["609772", "610212", "609695", "609695"]
    assert rows["cases"].tolist() == ["2", "1.5", "null", "true"]
    assert rows["cases_number"].iloc[:2].tolist() == [2, 1.5]
    assert rows["cases_number"].iloc[2:].isna().all()
    assert rows[SCHOOL].iloc[0] == "ADDAMS"
    assert rows[SCHOOL].iloc[1:].isna().all()


def test_csv_rows_without_an_id_are_dropped_and_lines_keep_their_numbers():
    payload = case_list(
        '"09/01/2021","609772","ADDAMS","Student"',
        '"09/01/2021","","UNASSIGNED","Adult"',
        '"09/02/2021","  ","UNASSIGNED","Adult"',
        "",
        '"09/03/2021"," 610212 ","ALBANY PARK","Adult"',
    )
    rows = parse_feed(payload, "cases.csv").rows
    assert rows[SCHOOL_ID].tolist() == ["609772", "610212"]
    assert rows[ROW].tolist() == [2, 6]
    assert rows[SCHOOL].tolist() == ["ADDAMS", "ALBANY PARK"]


def test_csv_with_bom_and_crlf_line_ends_is_read():
    payload = b"\xef\xbb\xbf" + case_list('"09/01/2021","609772","ADDAMS","Student"').replace(b"\n", b"\r\n")
    parsed = parse_feed(payload, "cases.csv")
    assert parsed.kind == "case-list-csv"
    assert parsed.rows[SCHOOL_ID].tolist() == ["609772"]


def test_csv_without_a_name_column_still_reads():
    rows = parse_feed(b"CPS School ID,Role\n609772,Student\n", "cases.csv").rows
    assert rows[SCHOOL_ID].tolist() == ["609772"]
    assert rows[SCHOOL].isna().all()


# --- unreadable payloads ---------------------------------------------------------------------------

TRUNCATED_JSON = b'[\n {"SchoolID": 609772, "TotalCaseCount": 2},\n {"SchoolID": 6102'


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        pytest.param(b"", "empty (0 bytes)", id="empty"),
        pytest.param(b" \r\n\t\n", "empty (5 bytes)", id="blank"),
        pytest.param(
            b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>", "HTML", id="html-error"
        ),
        pytest.param(b"<html><body>Please sign in</body></html>", "login page", id="html-login"),
        pytest.param("CPS School ID,School\n609772,ÉCOLE\n".encode("latin-1"), "byte 28: b'\\xc9COL'", id="latin-1"),
        pytest.param(b'"CPS School ID","School"\n"609772","ADDAMS"\n"6102', "line 3", id="csv-cut-in-quotes"),
        pytest.param(
            case_list('"09/01/2021","609772","ADDAMS","Student"') + b'"09/02/2021","610212",',
            "line 3 has 3 fields where the header has 4",
            id="csv-cut-mid-line",
        ),
        pytest.param(b"Result Date,School\n09/01/2021,ADDAMS\n", "line 1: no column 'CPS School ID'", id="csv-no-id"),
        pytest.param(TRUNCATED_JSON, "line 3, column", id="json-truncated"),
        pytest.param(b'[{"SchoolID": 609772, "TotalCaseCount": 2,}]', "line 1, column", id="json-malformed"),
        pytest.param(b'{"error": "rate limited", "retry": 30}', "got an object with keys ['error', 'retry']", id="obj"),
        pytest.param(
            api({"SchoolID": 609772, "TotalCaseCount": 1}, {"SchoolID": 610212}),
            "record 2 has no field TotalCaseCount",
            id="json-missing-count",
        ),
        pytest.param(api({"TotalCaseCount": 1}), "record 1 has no field SchoolID", id="json-missing-id"),
        pytest.param(
            api({"SchoolID": 609772, "TotalCaseCount": 1}, {"SchoolID": 1, "TotalCaseCount": 1}, [609695, 1]),
            "record 3 is [609695, 1], not an object",
            id="json-not-an-object",
        ),
    ],
)
def test_unreadable_payloads_are_refused_naming_file_and_place(payload, where):
    with pytest.raises(InputError) as raised:
        parse_feed(payload, "https://example.org/feeds/today.dat")
    message = str(raised.value)
    assert message.startswith("https://example.org/feeds/today.dat: ")
    assert where in message
    assert "\n" not in message


# --- rows that parse but must not be merged (inputs.read_feed) --------------------------------------


def one_json_record(school_id: object, count: object) -> bytes:
    return api(
        {"SchoolID": 609772, "TotalCaseCount": 1},
        {"SchoolID": 610212, "TotalCaseCount": 2},
        {"SchoolID": school_id, "TotalCaseCount": count},
    )


@pytest.mark.parametrize(
    ("payload", "row", "value"),
    [
        pytest.param(one_json_record("12345", 1), 3, "CPS_School_ID='12345'", id="id-5-digits"),
        pytest.param(one_json_record(12345, 1), 3, "CPS_School_ID='12345'", id="id-5-digits-number"),
        pytest.param(one_json_record("abc", 1), 3, "CPS_School_ID='abc'", id="id-text"),
        pytest.param(one_json_record(None, 1), 3, "CPS_School_ID='null'", id="id-null"),
        pytest.param(
            case_list('"09/01/2021","609772","ADDAMS","Student"', '"09/01/2021","abc","?","Student"'),
            3,
            "CPS_School_ID='abc'",
            id="csv-id-text",
        ),
        pytest.param(one_json_record(609695, -2), 3, "cases='-2'", id="negative"),
        pytest.param(one_json_record(609695, 1.5), 3, "cases='1.5'", id="fractional"),
        pytest.param(one_json_record(609695, "three"), 3, "cases='three'", id="text"),
        pytest.param(one_json_record(609695, None), 3, "cases='null'", id="null"),
        pytest.param(one_json_record(609695, 10000), 3, "cases_number=10000", id="absurd"),
    ],
)
def test_bad_rows_fail_validation_naming_row_and_value(payload, row, value):
    with pytest.raises(ValidationFailed) as raised:
        inputs.read_feed(payload, "today.feed")
    message = str(raised.value)
    assert message.startswith("validation failed, nothing was written: today.feed: ")
    assert f"row {row}: {value}" in message
    assert all(not r.success for r in raised.value.reports)


def test_a_negative_count_fails_both_its_text_and_its_range():
    with pytest.raises(ValidationFailed) as raised:
        inputs.read_feed(one_json_record(609695, -2), "today.feed")
    (report,) = raised.value.reports
    assert {f.columns for f in report.failures} == {("cases",), ("cases_number",)}
    assert all(f.unexpected_count == 1 for f in report.failures)


def test_a_header_without_rows_is_a_feed_without_cases():
    """The first days of a school year: valid here; whether it agrees with the history is the merge's check."""
    for payload in (HEADER.encode(), b"[]", b" [ ]\n"):
        feed = inputs.read_feed(payload, "today")
        assert feed.totals.empty and list(feed.totals.columns)[:2] == ["CPS_School_ID", "season_total"]
        assert all(r.success for r in feed.reports)


def test_an_implausible_season_total_fails_validation():
    payload = api(*[{"SchoolID": 609772, "TotalCaseCount": 400}] * 13)  # 5,200 cases at one school
    with pytest.raises(ValidationFailed, match="on season_total failed"):
        inputs.read_feed(payload, "today.json")


def test_duplicated_rows_are_cases_in_a_case_list():
    line = '"09/01/2021","609772","ADDAMS","Student"'
    feed = inputs.read_feed(case_list(line, line, line, '"09/02/2021","610212","ALBANY PARK","Adult"'), "cases")
    assert feed.kind == "case-list-csv"
    assert feed.totals[[SCHOOL_ID, "season_total"]].to_dict("records") == [
        {SCHOOL_ID: "609772", "season_total": 3},
        {SCHOOL_ID: "610212", "season_total": 1},
    ]
    assert all(r.success for r in feed.reports)


def test_duplicated_records_add_up_in_the_health_api():
    record = {"SchoolID": 609772, "TotalCaseCount": 2, "CaseDate": "09/01/2021"}
    feed = inputs.read_feed(api(record, record), "api.json")
    assert feed.totals["season_total"].tolist() == [4]


@pytest.mark.parametrize(
    ("file", "kind"), [("2021-09-23-cases.csv", "case-list-csv"), ("2021-09-23-health-api.json", "health-api-json")]
)
def test_the_bundled_feeds_pass_validation(feed_dir, file, kind):
    feed = inputs.read_feed((feed_dir / file).read_bytes(), file)
    assert feed.kind == kind
    assert [r.suite for r in feed.reports] == ["fresh_feed", "fresh_totals"]
    assert all(r.success and not r.warnings for r in feed.reports)
    assert list(feed.totals.columns) == [SCHOOL_ID, "season_total", SCHOOL]
    assert feed.totals[SCHOOL_ID].is_unique
    assert feed.totals.set_index(SCHOOL_ID).loc["400199", "season_total"] == 2
    network_office = int(kind == "case-list-csv")  # 610377: the case list has it; the merge ignores it
    assert feed.totals["season_total"].sum() == 487 + 20 + 2 + network_office
