"""Histories in the layouts the dashboard really served, built in code: migrated, or refused with what they need."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from cps_covid.errors import InputError
from cps_covid.rules import applying, history, inputs, merge, migration, outputs, publish_plan, render, season_calendar
from cps_covid.rules.schema import GTOTAL, SCHOOL_ID, front_end_columns

NAMES = ("allCpsCovidData.csv", "CPStotals.csv")
DAYS = [f"202102{d:02d}" for d in range(1, 11)]


def spring_2021(make_schools, **counts: list[int]) -> pd.DataFrame:
    """The February-August 2021 layout: ``7Total, 14Total, gTotal``, no ``21Total``, no carry-over."""
    schools = make_schools(DAYS, counts or {"609772": [0] * 9 + [1], "610212": [1] + [0] * 9}, carry_overs={})
    return schools.drop(columns=["21Total"])


def read(schools: pd.DataFrame) -> inputs.History:
    return inputs.read_history(history.csv_bytes(schools), None, NAMES)


def test_a_history_without_21total_gets_it_from_its_day_columns(make_schools) -> None:
    old = spring_2021(make_schools, **{"609772": [1] * 10, "610212": [0] * 9 + [4]})
    assert "21Total" not in old.columns

    migrated, events = migration.to_current_layout(old, "allCpsCovidData.csv")

    assert migrated.columns.tolist() == front_end_columns(migrated.columns)
    assert migrated.columns.tolist()[4:8] == ["7Total", "14Total", "21Total", GTOTAL]
    assert migrated["21Total"].tolist() == [10, 4]  # ten days, all inside 21 days
    assert [str(e) for e in events] == [
        "[migration] DISTRICT (*): added 21Total, computed from the day columns (an older layout)"
    ]
    pd.testing.assert_frame_equal(migrated.drop(columns=["21Total"]), old)  # nothing else changed


def test_the_migration_is_reported_with_the_update_and_done_once(make_schools, make_totals) -> None:
    hist = read(spring_2021(make_schools))
    assert [e.tag for e in hist.events] == ["migration"]
    feed = inputs.Feed("health-api-json", make_totals(**{"609772": 1, "610212": 3}), [])
    result = applying.apply(feed, hist, date(2021, 2, 11))
    assert result.events[0].tag == "migration" and result.added_cases == 2
    assert read(result.schools).events == []


def test_the_old_carry_over_name_is_renamed_and_its_values_kept(make_schools) -> None:
    old = make_schools(DAYS, {"609772": [1] * 10}, carry_overs={"pre829Total": {"609772": 4}})
    migrated, events = migration.to_current_layout(old, "f.csv")
    assert "pre829Total" not in migrated.columns and migrated["preSY2122"].tolist() == [4]
    assert "carry-over column renamed pre829Total to preSY2122" in str(events[0])


def test_a_file_without_school_ids_is_refused_with_what_it_would_need() -> None:
    january = pd.DataFrame({"School": ["ADDAMS"], "Latitude": [41.7], "Longitude": [-87.5], "Q3 SY20": [1]})
    with pytest.raises(InputError) as refused:
        migration.to_current_layout(january, "2021-01/allCpsCovidData.csv")
    message = str(refused.value)
    assert message.startswith("2021-01/allCpsCovidData.csv: line 1: no CPS_School_ID column")
    assert "cannot be migrated" in message and "add a CPS_School_ID column for every school" in message


def test_a_blank_carry_over_is_refused_naming_file_column_and_what_to_fill_in(make_schools) -> None:
    blank = make_schools(DAYS, {"609772": [1] * 10, "610212": [0] * 10}, carry_overs={"pre829Total": {}})
    blank["pre829Total"] = float("nan")
    with pytest.raises(InputError) as refused:
        read(blank)
    message = str(refused.value)
    assert message.startswith(
        "allCpsCovidData.csv: carry-over column pre829Total (preSY2122 in later files) is blank in 2"
    )
    assert "fill it in (for a season that ended on the file's last day it is each school's gTotal)" in message


def test_drift_without_a_carry_over_is_kept_reported_and_never_published_as_a_correction(
    make_schools, make_totals
) -> None:
    """BLAIR in the 2021 spring files: gTotal 1, its day columns 2, no carry-over column. No column is added (the
    front end reads ``newFormatTest.csv`` by row position): gTotal stays as the district confirmed it."""
    old = spring_2021(make_schools, **{"610087": [1] + [0] * 8 + [1], "609772": [0] * 10})
    old.loc[old[SCHOOL_ID] == "610087", GTOTAL] = 1
    feed = inputs.Feed("health-api-json", make_totals(**{"610087": 1}), [])  # the history's own total

    result = applying.apply(feed, read(old), date(2021, 2, 11))

    assert result.changes.empty and result.added_cases == 0
    assert "correction" not in [e.tag for e in result.events]
    assert [str(e) for e in result.events if e.tag.startswith("drift")] == [
        "[drift-kept] SCHOOL 610087 (610087): day columns sum to 2 but gTotal is 1; gTotal kept as the district "
        "confirmed it (the history has no carry-over column to hold the difference: the first season close moves "
        "it there)"
    ]
    assert set(result.schools.columns) - set(old.columns) == {"21Total", "20210211"}  # the migration's, the day's
    blair = result.schools.set_index(SCHOOL_ID).loc["610087"]
    assert blair[GTOTAL] == 1 and result.kept_drift == {"610087": -1}
    publication = outputs.build_publication(result, date(2021, 2, 11), pd.Timestamp("2021-02-11 12:00"), "https://x")
    assert publication.message is None and publish_plan.PAGE_KEY not in publication.objects

    later = applying.apply(
        inputs.Feed("health-api-json", make_totals(**{"610087": 2}), []), read(result.schools), date(2021, 2, 12)
    )
    assert later.changes["new_cases"].tolist() == [1]  # the district's next case, counted once
    assert "correction" not in [e.tag for e in later.events]
    assert later.kept_drift == {"610087": -1}  # kept again, never grown
    message = render.message(
        later.changes, later.day_cases(), date(2021, 2, 12), pd.Timestamp("2021-02-12"), "x", later.corrections
    )
    assert "Corrections" not in message


def test_kept_drift_moves_onto_the_carry_over_the_first_season_close_adds(make_schools, make_totals) -> None:
    old = spring_2021(make_schools, **{"610087": [1] + [0] * 8 + [1], "609772": [3] * 10})
    old.loc[old[SCHOOL_ID] == "610087", GTOTAL] = 1
    reset = inputs.Feed("health-api-json", make_totals(**{"609772": 1}), [])

    result = applying.apply(reset, read(old), date(2021, 2, 11), new_season="SY2021")

    blair = result.schools.set_index(SCHOOL_ID).loc["610087"]
    assert (blair[GTOTAL], blair["SY2021"]) == (2, 2)  # the day columns' 2 now, the season the district said: 0
    assert result.kept_drift == {} and "drift-repair" in [e.tag for e in result.events]


def test_a_published_table_with_new_drift_is_refused(make_schools, make_totals) -> None:
    """The kept drift is allowed exactly: the published check still catches drift the merge would create."""
    old = spring_2021(make_schools, **{"610087": [1] + [0] * 8 + [1], "609772": [0] * 10})
    old.loc[old[SCHOOL_ID] == "610087", GTOTAL] = 1
    result = applying.apply(
        inputs.Feed("health-api-json", make_totals(**{"610087": 1}), []), read(old), date(2021, 2, 11)
    )
    result.kept_drift = {}
    with pytest.raises(InputError, match="counted_total"):
        outputs.build_publication(result, date(2021, 2, 11), pd.Timestamp("2021-02-11 12:00"), "https://x")


def test_totals_dates_the_per_school_table_lacks_are_named_every_one(make_schools) -> None:
    """The 2021-03-28 file: CPStotals.csv had 24 dates the per-school table had no column for."""
    schools = spring_2021(make_schools)
    totals = merge.district_totals(
        make_schools(DAYS, {"609772": [0] * 9 + [1], "610212": [1] + [0] * 9}, carry_overs={})
    )
    extra = pd.DataFrame({"date": [20210211, 20210212], "daily": [3, 0], "running": [5, 5]})
    totals = pd.concat([totals, extra], ignore_index=True).fillna(0)

    hist = inputs.read_history(history.csv_bytes(schools), history.csv_bytes(totals), NAMES)

    (dropped,) = [e for e in hist.events if e.tag == "totals-dates-dropped"]
    assert "2 date(s) that allCpsCovidData.csv has no day column for: 20210211, 20210212" in str(dropped)
    assert any("20210211, 20210212" in w for w in hist.warnings)


def test_a_new_season_name_the_history_has_is_refused_listing_its_carry_overs(make_schools, make_totals) -> None:
    schools = make_schools(DAYS, {"609772": [5] * 10}, carry_overs={"preSY2122": {"609772": 3}})
    feed = inputs.Feed("health-api-json", make_totals(**{"609772": 2}), [])
    with pytest.raises(InputError) as refused:
        applying.apply(feed, read(schools), date(2021, 2, 11), new_season="preSY2122")
    assert str(refused.value) == (
        "new season name 'preSY2122': the history already has a column preSY2122 (its carry-over columns: "
        "preSY2122); nothing was written. Name the season that just ended with a name the history does not have yet"
    )
    resumed = applying.apply(feed, read(schools), date(2021, 2, 11), new_season="preSY2122", resumed=True)
    assert resumed.schools.columns.tolist().count("preSY2122") == 1  # finishing an update that closed it already


def test_a_reset_names_the_command_that_was_run(make_schools, make_totals) -> None:
    schools = make_schools(DAYS, {"609772": [10] * 10}, carry_overs={})
    feed = inputs.Feed("health-api-json", make_totals(**{"609772": 1}), [])
    with pytest.raises(InputError, match="rerun the update with new_season=NAME"):
        applying.apply(feed, read(schools), date(2021, 2, 11))
    with pytest.raises(InputError, match="rerun cps-covid merge --out x --new-season NAME, NAME naming the season"):
        applying.apply(feed, read(schools), date(2021, 2, 11), rerun=season_calendar.Rerun("cps-covid merge --out x"))


def test_a_blank_carry_over_under_its_old_name_is_named_as_the_file_names_it(make_schools) -> None:
    """The 2021-09-21 file: ``pre829Total`` blank in every row."""
    blank = make_schools(DAYS, {"609772": [1] * 10}, carry_overs={"pre829Total": {}})
    blank["pre829Total"] = float("nan")
    with pytest.raises(InputError, match=r"carry-over column pre829Total \(preSY2122 in later files\) is blank in 1"):
        read(blank)
