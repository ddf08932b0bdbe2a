"""Reading the published tables and describing them for validation."""

from __future__ import annotations

import pandas as pd
import pytest

from cps_covid.errors import InputError
from cps_covid.rules import history
from cps_covid.rules.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID, TOTALS_COLUMNS, HistoryLayout


def test_read_table_keeps_ids_and_names_as_text():
    frame = history.read_table(b"School,CPS_School_ID,gTotal\n1234,000123,4\nADDAMS,609772,1\n", "schools.csv")
    assert frame[SCHOOL_ID].tolist() == ["000123", "609772"]
    assert frame[SCHOOL].tolist() == ["1234", "ADDAMS"]
    assert frame[GTOTAL].dtype == "int64"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b'School,CPS_School_ID\n"ADDAMS,609772\n', "not a readable CSV file"),
        (b"School,CPS_School_ID\nADDAMS,609772\nAGASSIZ,609695,1\n", "not a readable CSV file.*line 3"),
    ],
    ids=["empty", "blank", "open-quote", "too-many-fields"],
)
def test_read_table_refuses_unreadable_files_naming_them(payload, reason):
    with pytest.raises(InputError, match=rf"^data/allCpsCovidData\.csv: {reason}"):
        history.read_table(payload, "data/allCpsCovidData.csv")


def test_the_real_layout(real_schools):
    layout = HistoryLayout.of(real_schools.columns)
    assert layout.carry_overs == ["preSY2122"]
    assert (layout.days[0], layout.days[-1], len(layout.days)) == ("20200307", "20210922", 295)
    assert layout.trailing == []
    assert history.count_columns(real_schools)[:6] == ["7Total", "14Total", "21Total", GTOTAL, "preSY2122", "20200307"]
    assert len(history.count_columns(real_schools)) == 4 + 1 + 295


def test_layout_names_missing_leading_columns(real_schools):
    with pytest.raises(KeyError, match=r"missing column.*gTotal"):
        HistoryLayout.of(real_schools.drop(columns=[GTOTAL]).columns)


def test_require_columns_names_file_line_and_columns(real_schools):
    with pytest.raises(InputError, match=r"^schools\.csv: line 1: missing column\(s\) Latitude, 14Total \(found"):
        history.require_columns(
            real_schools.drop(columns=[LATITUDE, "14Total"]), "schools.csv", [LATITUDE, "14Total", GTOTAL]
        )
    history.require_columns(real_schools, "schools.csv", [LATITUDE, GTOTAL])  # nothing missing: no error


def test_non_integer_cells_of_the_real_file_are_none(real_schools):
    cells = history.non_integer_cells(real_schools)
    assert cells.empty
    assert list(cells.columns) == ["_row", "column", "value"]


def test_non_integer_cells_name_line_column_and_value(real_files):
    text = real_files["allCpsCovidData.csv"].decode()
    lines = text.split("\n")
    # line 3 (ADDAMS): a word in a day column; line 5: a fraction in gTotal; line 6: an empty day cell
    for line_no, column, value in ((3, "20210915", "two"), (5, GTOTAL, "1.5"), (6, "20210901", "")):
        header = lines[0].split(",")
        fields = lines[line_no - 1].split(",")
        fields[header.index(column)] = value
        lines[line_no - 1] = ",".join(fields)
    schools = history.read_table("\n".join(lines).encode(), "schools.csv")

    cells = history.non_integer_cells(schools)

    assert sorted(cells.itertuples(index=False, name=None)) == [
        (3, "20210915", "two"),
        (5, GTOTAL, "1.5"),
        (6, "20210901", ""),
    ]


def test_typed_schools_makes_counts_integers(real_schools):
    as_floats = real_schools.astype({"20210922": "float64", GTOTAL: "float64"})
    typed = history.typed_schools(as_floats)
    assert typed["20210922"].dtype == "int64"
    assert typed[GTOTAL].dtype == "int64"
    assert typed[LATITUDE].dtype == "float64"
    pd.testing.assert_frame_equal(typed, real_schools)


def test_typed_schools_refuses_a_coordinate_that_is_not_a_number(real_schools):
    schools = real_schools.astype({LONGITUDE: "object"})
    schools.loc[9, LONGITUDE] = "west"
    with pytest.raises(InputError, match=r"^schools\.csv: line 11: Longitude is 'west', not a number$"):
        history.typed_schools(schools, "schools.csv")


def test_typed_schools_keeps_missing_coordinates(real_schools):
    schools = real_schools.copy()
    schools.loc[3, LATITUDE] = None
    assert pd.isna(history.typed_schools(schools).loc[3, LATITUDE])


def test_school_checks_describe_each_school(real_schools):
    checks = history.school_checks(real_schools)
    assert len(checks) == len(real_schools)
    assert checks["_row"].tolist()[:2] == [2, 3]
    blair = checks[checks[SCHOOL_ID] == "610087"].iloc[0]
    assert (blair["_row"], blair[GTOTAL], blair["day_sum"], blair["carry_over_sum"]) == (38, 1, 2, 1)
    assert blair["season_total"] == 0
    assert (checks["latest_day"] == "20210922").all()
    others = checks[checks[SCHOOL_ID] != "610087"]
    assert (others["day_sum"] == others[GTOTAL]).all()
    assert checks["season_total"].sum() == 487


def test_school_checks_without_carry_overs(make_schools):
    schools = make_schools(["20210901"], {"609772": [3]}, carry_overs={})
    checks = history.school_checks(schools)
    assert checks[["carry_over_sum", "season_total", "day_sum"]].iloc[0].tolist() == [0, 3, 3]


def test_totals_checks_put_recomputed_figures_beside_the_published(real_schools, real_files):
    published = history.read_table(real_files["CPStotals.csv"], "CPStotals.csv")
    checks = history.totals_checks(published, real_schools)

    assert list(checks.columns) == ["_row", *TOTALS_COLUMNS, "recomputed_daily", "recomputed_running"]
    by_date = checks.set_index("date")
    assert by_date.loc[20210825, ["daily", "recomputed_daily", "running", "recomputed_running"]].tolist() == [
        0,
        0,
        1975,
        1975,
    ]
    assert by_date.loc[20210826, ["_row", "daily", "recomputed_daily"]].tolist() == [269, 42, 43]
    assert by_date.loc[20210922, ["daily", "recomputed_daily", "running", "recomputed_running"]].tolist() == [
        0,
        74,
        2430,
        2505,
    ]
    assert (checks["daily"] != checks["recomputed_daily"]).sum() == 2
    assert (checks["running"] != checks["recomputed_running"]).sum() == 28


def test_totals_checks_leave_dates_the_schools_do_not_have_empty(real_schools):
    published = pd.DataFrame({c: [0] for c in TOTALS_COLUMNS}).assign(date=[20190101])
    checks = history.totals_checks(published, real_schools)
    assert checks["recomputed_daily"].isna().all()
    assert checks["recomputed_daily"].dtype == "Int64"


def test_csv_bytes_writes_floats_like_the_published_totals():
    frame = pd.DataFrame({"date": [20210922], "7DayAvg": [150 / 7], "14DayAvg": [224 / 14], "x": [1 / 7]})
    assert history.csv_bytes(frame) == b"date,7DayAvg,14DayAvg,x\n20210922,21.42857143,16,0.142857143\n"
