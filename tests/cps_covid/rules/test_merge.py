"""The merge: new cases, windows, gap days, corrections, new schools, and the real files' layout."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from cps_covid.rules import history, merge
from cps_covid.rules.feed import parse_feed
from cps_covid.rules.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID, HistoryLayout

SEPT = [f"202109{d:02d}" for d in range(13, 23)]  # 20210913 .. 20210922, one column per day
AS_OF = date(2021, 9, 23)


def sept_history(make_schools, **counts: dict[str, int]) -> pd.DataFrame:
    """Schools with cases on given September days: ``sept_history(mk, **{"609772": {"20210915": 1}})``."""
    return make_schools(SEPT, {sid: [days.get(d, 0) for d in SEPT] for sid, days in counts.items()})


def row(frame: pd.DataFrame, school_id: str) -> pd.Series:
    found = frame[frame[SCHOOL_ID] == school_id]
    assert len(found) == 1, f"{school_id} appears {len(found)} times"
    return found.iloc[0]


@pytest.fixture(scope="module")
def sample_totals(feed_dir) -> pd.DataFrame:
    """Season totals of the bundled 2021-09-23 case list (parsed only, as read_feed converts them)."""
    parsed = parse_feed((feed_dir / "2021-09-23-cases.csv").read_bytes(), "2021-09-23-cases.csv")
    return merge.season_totals_from_rows(parsed.rows.assign(cases=parsed.rows["cases_number"].astype("int64")))


@pytest.fixture(scope="module")
def sample_profiles() -> pd.DataFrame:
    return pd.DataFrame(
        {SCHOOL_ID: ["400199"], SCHOOL: ["LAKE VIEW - STEM ACADEMY"], LATITUDE: [41.9402], LONGITUDE: [-87.6587]}
    )


# --- new cases, gTotal, changes -------------------------------------------------------------------


def test_new_cases_land_in_the_as_of_column(make_schools, make_totals):
    schools = sept_history(make_schools, **{"609772": {"20210915": 1}, "610212": {"20210920": 2}})
    result = merge.apply_feed(schools, make_totals(**{"609772": 3, "610212": 2}), AS_OF)

    assert result.day == "20210923"
    assert result.schools.columns[-1] == "20210923"
    addams, albany = row(result.schools, "609772"), row(result.schools, "610212")
    assert addams["20210923"] == 2
    assert addams["20210915"] == 1
    assert addams[GTOTAL] == 3
    assert albany["20210923"] == 0
    assert albany[GTOTAL] == 2
    assert result.changes[[SCHOOL_ID, SCHOOL, "new_cases"]].to_dict("records") == [
        {SCHOOL_ID: "609772", SCHOOL: "ADDAMS", "new_cases": 2}
    ]
    assert result.net_cases == 2
    assert result.events == []


def test_gtotal_is_the_sum_of_day_columns_after_a_merge(make_schools, make_totals):
    schools = sept_history(
        make_schools, **{"609772": {"20210914": 4, "20210921": 1}, "609695": {}, "610529": {"20210913": 2}}
    )
    result = merge.apply_feed(schools, make_totals(**{"609772": 7, "609695": 1, "610529": 2}), AS_OF)
    layout = HistoryLayout.of(result.schools.columns)

    np.testing.assert_array_equal(result.schools[GTOTAL], result.schools[layout.days].sum(axis=1))
    assert result.schools[GTOTAL].tolist() == [7, 1, 2]
    assert result.schools["20210923"].tolist() == [2, 1, 0]


def test_schools_missing_from_the_feed_are_untouched(make_schools, make_totals):
    schools = sept_history(make_schools, **{"609772": {"20210915": 1}, "610212": {"20210916": 5}})
    result = merge.apply_feed(schools, make_totals(**{"609772": 2}), AS_OF)

    albany = row(result.schools, "610212")
    assert albany[GTOTAL] == 5
    assert albany["20210923"] == 0
    assert result.changes[SCHOOL_ID].tolist() == ["609772"]


def test_day_cases_lists_every_school_with_cases_in_the_as_of_column(make_schools, make_totals):
    schools = sept_history(make_schools, **{"609772": {}, "610212": {}, "609695": {"20210915": 1}})
    result = merge.apply_feed(schools, make_totals(**{"609772": 1, "610212": 3, "609695": 1}), AS_OF)

    day_cases = result.day_cases()
    assert list(day_cases.columns) == [SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID, "cases"]
    assert dict(zip(day_cases[SCHOOL_ID], day_cases["cases"], strict=True)) == {"609772": 1, "610212": 3}


def test_season_totals_from_rows_sums_per_school_and_keeps_a_name():
    rows = pd.DataFrame(
        {
            SCHOOL_ID: ["610212", "609772", "610212", "609772"],
            "cases": [1, 2, 3, 1],
            SCHOOL: ["ALBANY PARK", None, "ALBANY PARK", "ADDAMS"],
        }
    )
    totals = merge.season_totals_from_rows(rows)
    assert totals.to_dict("records") == [
        {SCHOOL_ID: "609772", "season_total": 3, SCHOOL: "ADDAMS"},
        {SCHOOL_ID: "610212", "season_total": 4, SCHOOL: "ALBANY PARK"},
    ]


# --- windows ------------------------------------------------------------------------------------------


def test_windows_count_calendar_days_ending_at_the_as_of_day(make_schools, make_totals):
    # one case 21, 14 and 7 days before the as-of day: each falls just outside its window
    days = [f"202109{d:02d}" for d in range(1, 23)]
    counts = [1 if d in ("20210902", "20210909", "20210916") else 0 for d in days]
    schools = make_schools(days, {"609772": counts})
    result = merge.apply_feed(schools, make_totals(**{"609772": 4}), AS_OF)

    addams = row(result.schools, "609772")
    assert (addams["7Total"], addams["14Total"], addams["21Total"], addams[GTOTAL]) == (1, 2, 3, 4)


def test_windows_span_zero_filled_gap_days(make_schools, make_totals):
    days = ["20210901", "20210910"]
    schools = make_schools(days, {"609772": [5, 2]})
    result = merge.apply_feed(schools, make_totals(**{"609772": 8}), date(2021, 9, 20))

    addams = row(result.schools, "609772")
    # 7 days: 14..20 -> 1 new; 14 days: 07..20 -> 2 + 1; 21 days: 31 Aug..20 -> 5 + 2 + 1
    assert (addams["7Total"], addams["14Total"], addams["21Total"]) == (1, 3, 8)


def test_windows_over_weekly_2020_columns(real_schools):
    layout = HistoryLayout.of(real_schools.columns)
    weekly = [d for d in layout.days if d <= "20200704"]
    assert len(weekly) == 18  # one column a week from 2020-03-07
    schools = real_schools.drop(columns=[d for d in layout.days if d not in weekly])

    windows = merge.recompute_windows(schools)

    # calendar days, not columns: 7 days end-exclusive holds one week, 14 two weeks, 21 three
    pd.testing.assert_series_equal(windows["7Total"], schools["20200704"], check_names=False)
    pd.testing.assert_series_equal(windows["14Total"], schools["20200627"] + schools["20200704"], check_names=False)
    pd.testing.assert_series_equal(
        windows["21Total"], schools[["20200620", "20200627", "20200704"]].sum(axis=1), check_names=False
    )
    assert windows["21Total"].sum() > windows["14Total"].sum() > windows["7Total"].sum() > 0


def test_windows_of_the_real_file_are_recomputed_identically(real_schools):
    recomputed = merge.recompute_windows(real_schools.assign(**{w: 0 for w in ("7Total", "14Total", "21Total")}))
    for column in ("7Total", "14Total", "21Total"):
        pd.testing.assert_series_equal(recomputed[column], real_schools[column])
    assert recomputed["7Total"].sum() == 74


# --- day columns ---------------------------------------------------------------------------------------


def test_gap_days_are_zero_filled_up_to_the_as_of_day(make_schools, make_totals):
    schools = make_schools(["20210919", "20210920"], {"609772": [1, 0], "610212": [0, 2]})
    result = merge.apply_feed(schools, make_totals(**{"609772": 2}), AS_OF)

    layout = HistoryLayout.of(result.schools.columns)
    assert layout.days == ["20210919", "20210920", "20210921", "20210922", "20210923"]
    assert result.schools[["20210921", "20210922"]].to_numpy().tolist() == [[0, 0], [0, 0]]
    assert result.schools["20210923"].tolist() == [1, 0]
    assert all(result.schools[d].dtype == "int64" for d in layout.days)


def test_gap_days_on_the_real_history(real_schools, make_totals):
    result = merge.apply_feed(real_schools, make_totals(), date(2021, 9, 25))

    layout = HistoryLayout.of(result.schools.columns)
    assert layout.days[-4:] == ["20210922", "20210923", "20210924", "20210925"]
    assert result.schools[["20210923", "20210924", "20210925"]].to_numpy().sum() == 0
    assert result.schools["7Total"].sum() == 74  # 2021-09-22's cases are still within the week
    assert result.changes.empty


def test_a_day_already_present_gets_no_new_column(make_schools, make_totals):
    schools = sept_history(make_schools, **{"609772": {"20210922": 1}})
    result = merge.apply_feed(schools, make_totals(**{"609772": 3}), date(2021, 9, 22))

    assert HistoryLayout.of(result.schools.columns).days == SEPT
    assert row(result.schools, "609772")["20210922"] == 3


# --- rerun, corrections -------------------------------------------------------------------------


def test_rerunning_the_same_feed_on_the_same_day_changes_nothing(real_schools, sample_totals, sample_profiles):
    first = merge.apply_feed(
        real_schools, sample_totals, AS_OF, profiles=sample_profiles, ignore_ids=frozenset({"610377"})
    )
    assert first.net_cases == 22
    assert {e.tag for e in first.events} == {"drift-repair", "school-added"}

    second = merge.apply_feed(
        first.schools, sample_totals, AS_OF, profiles=sample_profiles, ignore_ids=frozenset({"610377"})
    )

    assert second.changes.empty
    assert second.net_cases == 0
    assert second.events == []
    pd.testing.assert_frame_equal(second.schools, first.schools)


def test_rerun_on_the_next_day_adds_an_empty_day(make_schools, make_totals):
    schools = sept_history(make_schools, **{"609772": {"20210915": 1}})
    totals = make_totals(**{"609772": 3})
    first = merge.apply_feed(schools, totals, AS_OF)
    second = merge.apply_feed(first.schools, totals, date(2021, 9, 24))

    assert second.changes.empty
    addams = row(second.schools, "609772")
    assert (addams["20210923"], addams["20210924"], addams[GTOTAL]) == (2, 0, 3)


@pytest.mark.parametrize("removed", [1, 2])
def test_a_lower_season_total_is_a_correction(make_schools, make_totals, removed):
    schools = sept_history(make_schools, **{"609772": {"20210915": 3}, "610212": {}})
    result = merge.apply_feed(schools, make_totals(**{"609772": 3 - removed, "610212": 1}), AS_OF)

    addams = row(result.schools, "609772")
    assert addams["20210923"] == -removed
    assert addams["20210915"] == 3  # the day the cases were reported keeps them
    assert addams[GTOTAL] == 3 - removed
    assert dict(zip(result.changes[SCHOOL_ID], result.changes["new_cases"], strict=True)) == {
        "609772": -removed,
        "610212": 1,
    }
    assert result.net_cases == 1 - removed
    corrections = [e for e in result.events if e.tag == "correction"]
    assert len(corrections) == 1
    assert (corrections[0].school_id, corrections[0].school) == ("609772", "ADDAMS")
    assert f"went down by {removed}: applied as -{removed} on 20210923" in corrections[0].detail
    assert str(corrections[0]).startswith("[correction] ADDAMS (609772):")
    # what the open dataset's errata table shows: the season total, before and after
    assert (corrections[0].field, corrections[0].old, corrections[0].new) == ("season total", 3, 3 - removed)


# --- new schools, ignore list -----------------------------------------------------------------------


def test_a_new_school_is_added_from_its_profile(make_schools, make_totals, sample_profiles):
    schools = sept_history(make_schools, **{"609772": {"20210915": 1}})
    result = merge.apply_feed(schools, make_totals(**{"609772": 1, "400199": 2}), AS_OF, profiles=sample_profiles)

    assert len(result.schools) == 2
    added = result.schools.iloc[-1]
    assert added[SCHOOL_ID] == "400199"
    assert added[SCHOOL] == "LAKE VIEW-STEM ACADEMY"
    assert (added[LATITUDE], added[LONGITUDE]) == (41.9402, -87.6587)
    assert (added["20210923"], added[GTOTAL], added["preSY2122"], added["7Total"]) == (2, 2, 0, 2)
    assert added[SEPT].sum() == 0
    assert [(e.tag, e.school_id, e.school) for e in result.events] == [
        ("school-added", "400199", "LAKE VIEW-STEM ACADEMY")
    ]
    assert result.changes[SCHOOL_ID].tolist() == ["400199"]
    assert result.schools.dtypes.equals(schools.assign(**{"20210923": 0}).dtypes)


@pytest.mark.parametrize(
    ("feed_name", "expected_name"), [("new school", "NEW SCHOOL"), (None, "SCHOOL 400200")], ids=["named", "unnamed"]
)
def test_a_new_school_without_profile_is_kept_with_its_id(make_schools, feed_name, expected_name):
    schools = sept_history(make_schools, **{"609772": {}})
    totals = pd.DataFrame({SCHOOL_ID: ["400200"], "season_total": [1], SCHOOL: [feed_name]})
    result = merge.apply_feed(schools, totals, AS_OF)

    added = row(result.schools, "400200")
    assert added[SCHOOL] == expected_name
    assert pd.isna(added[LATITUDE]) and pd.isna(added[LONGITUDE])
    assert added["20210923"] == 1
    (event,) = result.events
    assert event.tag == "school-added-without-profile"
    assert (event.school_id, event.school) == ("400200", expected_name)
    assert "kept with its id" in event.detail


def test_a_new_school_is_never_dropped_afterwards(make_schools, make_totals, sample_profiles):
    schools = sept_history(make_schools, **{"609772": {}})
    first = merge.apply_feed(schools, make_totals(**{"400199": 2}), AS_OF, profiles=sample_profiles)
    second = merge.apply_feed(first.schools, make_totals(**{"609772": 1}), date(2021, 9, 24))

    assert row(second.schools, "400199")[GTOTAL] == 2
    assert second.events == []


def test_ignored_ids_are_neither_added_nor_counted(make_schools, make_totals):
    schools = sept_history(make_schools, **{"609772": {"20210915": 1}, "610212": {"20210915": 1}})
    totals = make_totals(**{"609772": 2, "610212": 9, "610377": 1})
    result = merge.apply_feed(schools, totals, AS_OF, ignore_ids=frozenset({"610377", "610212"}))

    assert result.schools[SCHOOL_ID].tolist() == ["609772", "610212"]
    assert row(result.schools, "610212")[GTOTAL] == 1
    assert result.changes[SCHOOL_ID].tolist() == ["609772"]
    assert result.events == []


# --- layout: trailing and carry-over columns -----------------------------------------------------------------


def test_trailing_non_day_columns_stay_after_the_days(make_schools, make_totals):
    schools = make_schools(
        ["20210920", "20210921"],
        {"609772": [1, 0], "610212": [0, 0]},
        trailing={"vaccinated": ["71%", "64%"], "enrolment": [410, 1207]},
    )
    result = merge.apply_feed(schools, make_totals(**{"609772": 2}), AS_OF)

    assert list(result.schools.columns[-5:]) == ["20210921", "20210922", "20210923", "vaccinated", "enrolment"]
    assert result.schools["vaccinated"].tolist() == ["71%", "64%"]
    assert result.schools["enrolment"].tolist() == [410, 1207]
    assert HistoryLayout.of(result.schools.columns).trailing == ["vaccinated", "enrolment"]
    assert row(result.schools, "609772")["20210923"] == 1


def test_every_carry_over_column_counts_as_closed_seasons(make_schools, make_totals):
    # 2 cases before 2021-22 (preSY2122), 5 in 2021-22 (SY2122), 1 so far in 2022-23
    schools = make_schools(
        ["20210301", "20220301", "20220906"],
        {"609772": [2, 5, 1]},
        carry_overs={"preSY2122": {"609772": 2}, "SY2122": {"609772": 5}},
    )
    assert HistoryLayout.of(schools.columns).carry_overs == ["preSY2122", "SY2122"]

    result = merge.apply_feed(schools, make_totals(**{"609772": 3}), date(2022, 9, 7))

    addams = row(result.schools, "609772")
    assert addams["20220907"] == 2  # season total 3 - (gTotal 8 - carry-overs 7)
    assert (addams[GTOTAL], addams["preSY2122"], addams["SY2122"]) == (10, 2, 5)
    assert list(result.schools.columns[7:10]) == [GTOTAL, "preSY2122", "SY2122"]


def test_drift_is_repaired_on_the_latest_carry_over(make_schools, make_totals):
    schools = make_schools(
        ["20210301", "20220301", "20220906"],
        {"609772": [2, 5, 1]},
        carry_overs={"preSY2122": {"609772": 2}, "SY2122": {"609772": 5}},
    )
    schools[GTOTAL] = 7  # day columns say 8: one case lost from a closed season
    result = merge.apply_feed(schools, make_totals(**{"609772": 0}), date(2022, 9, 7))

    addams = row(result.schools, "609772")
    assert (addams[GTOTAL], addams["preSY2122"], addams["SY2122"]) == (8, 2, 6)
    assert addams["20220907"] == 0  # the season total (0) is what the feed confirms
    (event,) = result.events
    assert event.tag == "drift-repair"
    assert "SY2122 from 5 to 6" in event.detail


def test_blair_drift_is_repaired_on_presy2122(real_schools, make_totals):
    blair_before = row(real_schools, "610087")
    assert (blair_before[GTOTAL], blair_before["preSY2122"]) == (1, 1)

    result = merge.apply_feed(real_schools, make_totals(), AS_OF)

    blair = row(result.schools, "610087")
    assert (blair[GTOTAL], blair["preSY2122"]) == (2, 2)
    assert blair[GTOTAL] - blair["preSY2122"] == 0  # season total unchanged
    (event,) = result.events
    assert (event.tag, event.school_id, event.school) == ("drift-repair", "610087", "BLAIR")
    assert "day columns sum to 2 but gTotal was 1" in event.detail
    layout = HistoryLayout.of(result.schools.columns)
    np.testing.assert_array_equal(result.schools[GTOTAL], result.schools[layout.days].sum(axis=1))


# --- the real files ---------------------------------------------------------------------------------


def test_csv_bytes_round_trips_the_real_schools_file(real_files):
    published = real_files["allCpsCovidData.csv"]
    assert history.csv_bytes(history.read_table(published, "allCpsCovidData.csv")) == published


def test_transposed_real_schools_equal_the_real_new_format_file(real_schools, real_files):
    assert history.csv_bytes(merge.transposed(real_schools)) == real_files["newFormatTest.csv"]


def test_district_totals_match_the_real_totals_before_the_drift(real_schools, real_files):
    published = history.read_table(real_files["CPStotals.csv"], "CPStotals.csv")
    recomputed = merge.district_totals(real_schools)

    assert list(recomputed.columns) == list(published.columns)
    assert recomputed["date"].tolist() == published["date"].tolist()
    before = published["date"] < 20210826
    assert before.sum() == 267
    pd.testing.assert_frame_equal(
        recomputed[before], published[before], check_exact=False, rtol=0, atol=5e-9, check_dtype=True
    )
    # the old process drifted from 2021-08-26 on: one case short, and nothing for 2021-09-22
    on = recomputed.set_index("date")
    assert on.loc[20210826, "daily"] == 43
    assert published.set_index("date").loc[20210826, "daily"] == 42
    assert on.loc[20210922, "daily"] == real_schools["20210922"].sum() == 74
    assert on["running"].iloc[-1] == real_schools[HistoryLayout.of(real_schools.columns).days].to_numpy().sum()


def test_district_totals_are_written_like_the_real_file(real_schools, real_files):
    published = real_files["CPStotals.csv"].splitlines()
    written = history.csv_bytes(merge.district_totals(real_schools)).splitlines()

    assert len(written) == len(published)
    header_and_rows_before_drift = 1 + 267
    assert written[:header_and_rows_before_drift] == published[:header_and_rows_before_drift]
    assert written[header_and_rows_before_drift] != published[header_and_rows_before_drift]
    assert written[header_and_rows_before_drift].startswith(b"20210826,43,")


def test_district_totals_roll_over_calendar_days(make_schools):
    schools = make_schools(
        ["20200307", "20200314", "20210101", "20210102", "20210108"],
        {"609772": [1, 2, 3, 4, 5], "610212": [0, 1, 0, 0, 1]},
    )
    totals = merge.district_totals(schools)

    assert totals["date"].tolist() == [20200307, 20200314, 20210101, 20210102, 20210108]
    assert totals["daily"].tolist() == [1, 3, 3, 4, 6]
    assert totals["running"].tolist() == [1, 4, 7, 11, 17]
    assert totals["7DaySum"].tolist() == [1, 3, 3, 7, 10]  # 2021-01-01 is 7 days before 01-08: out
    assert totals["14DaySum"].tolist() == [1, 4, 3, 7, 13]
    assert totals["7DayAvg"].tolist() == pytest.approx([1 / 7, 3 / 7, 3 / 7, 1, 10 / 7])
    assert totals["14DayAvg"].tolist() == pytest.approx([1 / 14, 4 / 14, 3 / 14, 7 / 14, 13 / 14])
