"""The vaccination feed and its three columns (pure): nulls, validation, placement, and the case merge after it."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from cps_covid.errors import InputError
from cps_covid.rules import history, merge, vaccination
from cps_covid.rules.schema import HistoryLayout
from cps_covid.rules.validation import ValidationFailed


def feed(*records: dict) -> bytes:
    return json.dumps(list(records)).encode()


def record(school_id, students=100, first=50, complete=40) -> dict:
    return {
        "SchoolID": school_id,
        "OverallStudentCount": students,
        "OverallOneDoseCount": first,
        "OverallCompletedCount": complete,
    }


def test_nulls_count_as_zero_and_text_is_kept_for_the_report() -> None:
    rows = vaccination.parse_feed(feed(record(609772, None, 5, None), record("610212", 12, 3, 2)), "f")
    assert vaccination.COLUMNS == ["Student_Count", "Vax_Complete", "Vax_First_Dose"]  # the front end's rows 3-5
    assert rows[["CPS_School_ID", *vaccination.COLUMNS]].values.tolist() == [
        ["609772", "0", "0", "5"],
        ["610212", "12", "2", "3"],
    ]
    figures = vaccination.read_feed(feed(record(609772, None, 5, None)), "f").figures
    assert figures.loc[0, vaccination.COLUMNS].tolist() == [0, 0, 5]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "is empty"),
        (b"\xff", "not UTF-8"),
        (b"[1]", "record 1 is 1, not an object"),
        (b'[{"SchoolID": 1}]', "record 1 has no field OverallStudentCount"),
        (b'{"a": 1}', "expected a JSON list"),
    ],
)
def test_malformed_feeds_name_the_problem(payload: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        vaccination.parse_feed(payload, "vaccination.json")


def test_more_doses_than_students_is_a_warning_not_a_stop() -> None:
    found = vaccination.read_feed(feed(record(609772, 10, 12, 11)), "f")
    assert len(found.warnings) == 2 and "Vax_First_Dose" in found.warnings[0]
    with pytest.raises(ValidationFailed, match="CPS_School_ID='12'"):
        vaccination.read_feed(feed(record(12)), "f")


def test_the_columns_go_after_the_school_id_and_nothing_else_changes(make_schools) -> None:
    schools = make_schools(["20210921", "20210922"], {"609772": [1, 2], "610212": [0, 3], "609695": [0, 0]})
    figures = vaccination.read_feed(feed(record(609772, 700, 400, 300), record(400199, 9, 9, 9)), "f").figures

    result = vaccination.apply_figures(schools, figures)

    columns = list(schools.columns)
    assert list(result.schools.columns) == [*columns[:4], *vaccination.COLUMNS, *columns[4:]]
    pd.testing.assert_frame_equal(result.schools[schools.columns], schools)
    assert result.schools[vaccination.COLUMNS].values.tolist() == [[700, 300, 400], [0, 0, 0], [0, 0, 0]]
    assert (result.updated, result.unknown_ids, result.missing_ids) == (1, ["400199"], ["609695", "610212"])
    assert result.events == []  # placed, not moved
    layout = HistoryLayout.of(result.schools.columns)
    assert (layout.carry_overs, layout.trailing) == (HistoryLayout.of(schools.columns).carry_overs, [])


def test_columns_published_after_the_days_are_moved_once_as_an_explained_event(make_schools) -> None:
    schools = make_schools(
        ["20210922"],
        {"609772": [1], "610212": [2]},
        trailing={"Student_Count": [10, 20], "Vax_First_Dose": [1, 2], "Vax_Complete": [0, 1]},
    )
    assert HistoryLayout.of(schools.columns).trailing == []  # never taken for carry-overs or trailing columns
    result = vaccination.apply_figures(schools, vaccination.read_feed(feed(record(609772, 11, 1, 0)), "f").figures)
    columns = [c for c in schools.columns if c not in vaccination.COLUMNS]
    assert list(result.schools.columns) == [*columns[:4], *vaccination.COLUMNS, *columns[4:]]
    assert result.schools[vaccination.COLUMNS].values.tolist() == [[11, 0, 1], [20, 1, 2]]  # 610212 kept its own
    assert result.updated == 1
    assert [e.tag for e in result.events] == ["migration"]
    assert "Student_Count, Vax_Complete, Vax_First_Dose moved after CPS_School_ID" in str(result.events[0])
    again = vaccination.apply_figures(
        result.schools, vaccination.read_feed(feed(record(609772, 11, 1, 0)), "f").figures
    )
    assert again.updated == 0 and again.events == []


def test_a_case_merge_after_it_keeps_the_columns_and_the_totals(real_schools, make_totals) -> None:
    figures = vaccination.read_feed(feed(record(609772, 700, 400, 300)), "f").figures
    with_figures = vaccination.apply_figures(real_schools, figures).schools
    totals = make_totals(**{"609772": 99})

    plain = merge.apply_feed(real_schools, totals, date(2021, 9, 23))
    merged = merge.apply_feed(with_figures, totals, date(2021, 9, 23))

    assert list(merged.schools.columns[4:8]) == [*vaccination.COLUMNS, "7Total"]
    assert merged.schools.columns[-1] == "20210923"
    assert merged.schools.loc[merged.schools["CPS_School_ID"] == "609772", vaccination.COLUMNS].values.tolist() == [
        [700, 300, 400]
    ]
    pd.testing.assert_frame_equal(merged.schools.drop(columns=vaccination.COLUMNS), plain.schools)
    assert history.csv_bytes(merge.district_totals(merged.schools)) == history.csv_bytes(
        merge.district_totals(plain.schools)
    )
