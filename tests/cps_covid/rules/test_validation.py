"""The Great Expectations suites in expectations/ and how their results are reported."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cps_covid.errors import InputError
from cps_covid.rules import history
from cps_covid.rules.validation import (
    EXPECTATIONS_DIR,
    Finding,
    ValidationFailed,
    ValidationReport,
    load_suite,
    suite_path,
    validate,
)

SUITES = sorted(p.stem for p in EXPECTATIONS_DIR.glob("*.json"))


def feed_rows(*rows: tuple[int, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["_row", "CPS_School_ID", "cases"])
    return frame.assign(School="X", cases_number=pd.to_numeric(frame["cases"], errors="coerce"))


def test_every_suite_is_bundled():
    assert SUITES == [
        "fresh_feed",
        "fresh_totals",
        "history_cells",
        "history_schools",
        "history_totals",
        "published_schools",
        "published_totals",
        "vaccination_feed",
    ]


@pytest.mark.parametrize("name", SUITES)
def test_each_suite_loads_whole_and_explains_every_expectation(name):
    spec = json.loads(suite_path(name).read_text())
    suite = load_suite(name)
    assert suite.name == name == spec["name"]
    assert len(suite.expectations) == len(spec["expectations"]) > 0
    for expectation in spec["expectations"]:
        assert expectation.get("meta", {}).get("why"), f"{name}: {expectation['type']} has no meta.why"
        assert expectation.get("severity", "critical") in {"critical", "warning"}


def test_only_drift_and_dose_counts_are_warnings():
    warnings = sorted(
        (name, e["type"], e["kwargs"].get("column_A"), e["kwargs"].get("column_B"))
        for name in SUITES
        for e in json.loads(suite_path(name).read_text())["expectations"]
        if e.get("severity") == "warning"
    )
    pair = "expect_column_pair_values_to_be_equal"
    at_most = "expect_column_pair_values_a_to_be_greater_than_b"
    assert warnings == [
        ("history_schools", pair, "gTotal", "day_sum"),
        ("history_totals", pair, "daily", "recomputed_daily"),
        ("history_totals", pair, "running", "recomputed_running"),
        ("vaccination_feed", at_most, "Student_Count_number", "Vax_Complete_number"),
        ("vaccination_feed", at_most, "Student_Count_number", "Vax_First_Dose_number"),
    ]


def test_a_clean_frame_passes():
    report = validate(feed_rows((2, "609772", "1"), (3, "610212", "4")), "fresh_feed", "feed.csv")
    assert report.success
    assert report.failures == [] and report.warnings == []
    assert report.evaluated == 5
    assert report.markdown() == "### Suite `fresh_feed` on `feed.csv`: 5 expectations\n- all passed"


def test_a_failure_is_described_for_a_person():
    report = validate(feed_rows((2, "609772", "1"), (3, "60977", "1"), (4, "610212", "one")), "fresh_feed", "feed.csv")
    assert not report.success
    by_column = {f.columns: f for f in report.failures}
    assert set(by_column) == {("CPS_School_ID",), ("cases",)}

    bad_id = by_column[("CPS_School_ID",)]
    assert (bad_id.suite, bad_id.source) == ("fresh_feed", "feed.csv")
    assert bad_id.expectation == "expect_column_values_to_match_regex"
    assert bad_id.why == "CPS school ids are 6 digits"
    assert bad_id.unexpected_count == 1
    assert bad_id.samples == ("row 3: CPS_School_ID='60977', School='X'",)
    assert str(bad_id) == (
        "feed.csv: expect_column_values_to_match_regex on CPS_School_ID failed (CPS school ids are 6 digits): "
        "1 unexpected value(s), e.g. row 3: CPS_School_ID='60977', School='X'"
    )
    assert "row 4: cases='one'" in str(by_column[("cases",)])
    assert "- **Failed**: feed.csv: expect_column_values_to_match_regex" in report.markdown()


def test_samples_stop_at_five():
    rows = [(n, "bad", "1") for n in range(2, 12)]
    (finding,) = validate(feed_rows(*rows), "fresh_feed", "feed.csv").failures
    assert finding.unexpected_count == 10
    assert [s.split(":")[0] for s in finding.samples] == ["row 2", "row 3", "row 4", "row 5", "row 6"]


def test_a_table_level_failure_shows_what_was_observed():
    totals = pd.DataFrame({"CPS_School_ID": [f"{400000 + i}" for i in range(5001)], "season_total": 1})
    (finding,) = validate(totals, "fresh_totals", "feed.json").failures
    assert finding.expectation == "expect_table_row_count_to_be_between"
    assert finding.columns == ()
    assert str(finding).endswith(
        "failed (the district has at most 5,000 schools; none: no case this season yet): observed 5001"
    )


def test_frames_without_row_numbers_still_report_values():
    totals = pd.DataFrame({"CPS_School_ID": ["609772", "609772"], "season_total": [1, 2]})
    (finding,) = validate(totals, "fresh_totals", "feed.json").failures
    assert finding.columns == ("CPS_School_ID",)
    assert finding.unexpected_count == 2
    assert finding.samples  # index positions, but never empty


def test_warnings_do_not_fail_a_report(real_schools):
    report = validate(history.school_checks(real_schools), "history_schools", "allCpsCovidData.csv")
    assert report.success
    assert report.failures == []
    (warning,) = report.warnings
    assert warning.columns == ("gTotal", "day_sum")
    assert warning.samples == ("row 38: gTotal=1, CPS_School_ID='610087', School='BLAIR', day_sum=2",)
    assert "- **Warning**: allCpsCovidData.csv: expect_column_pair_values_to_be_equal" in report.markdown()
    assert "all passed" not in report.markdown()


def test_the_same_drift_fails_a_publication(real_schools):
    report = validate(history.school_checks(real_schools), "published_schools", "data/allCpsCovidData.csv")
    assert not report.success
    assert [f.columns for f in report.failures] == [("gTotal", "counted_total")]
    assert report.warnings == []


def test_cells_are_named_by_row_and_column():
    cells = pd.DataFrame({"_row": [7, 9], "column": ["20210915", "gTotal"], "value": ["two", "3"]})
    (finding,) = validate(cells, "history_cells", "schools.csv").failures
    assert finding.samples == ("row 7: value='two', column='20210915'",)


def test_validation_failed_gathers_every_failure():
    good = ValidationReport("fresh_totals", "a.json", 3)
    bad = ValidationReport(
        "fresh_feed",
        "a.json",
        5,
        failures=[
            Finding("fresh_feed", "a.json", "expect_x", ("cases",), "why", 1, ("row 2: cases='-1'",)),
            Finding("fresh_feed", "a.json", "expect_y", (), "", None, (), observed=0),
        ],
    )
    failed = ValidationFailed([good, bad])
    assert isinstance(failed, InputError)
    assert failed.reports == [good, bad]
    assert str(failed) == (
        "validation failed, nothing was written: a.json: expect_x on cases failed (why): 1 unexpected value(s), "
        "e.g. row 2: cases='-1' | a.json: expect_y failed: observed 0"
    )


def test_a_validation_has_its_great_expectations_data_docs_page() -> None:
    from cps_covid.rules.validation import data_docs_page

    totals = pd.DataFrame({"CPS_School_ID": ["609772", "610212"], "season_total": [4, -3]})
    page = data_docs_page(validate(totals, "fresh_totals", "feed.csv"), "update-2021-09-23 at 13:54:02").decode()

    assert page.startswith("<!DOCTYPE html>") or "<html" in page[:500]
    assert "fresh_totals" in page and "update-2021-09-23 at 13:54:02" in page
    assert "Failed" in page and ">-3<" in page.replace(" ", "")  # the unexpected value, in GE's own table
