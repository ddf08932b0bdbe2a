"""What one update publishes: the objects, the message, and what is never published."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from cps_covid.rules import applying, history, inputs, merge, outputs
from cps_covid.rules.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID
from cps_covid.rules.validation import ValidationFailed

AS_OF = date(2021, 9, 23)
UPDATED = datetime(2021, 9, 23, 16, 5, tzinfo=ZoneInfo("America/Chicago"))
NAMES = ("allCpsCovidData.csv", "CPStotals.csv")
CSV_FILES = ("allCpsCovidData.csv", "CPStotals.csv", "newFormatTest.csv")


def test_a_publication_with_new_cases_has_four_objects_and_a_message(sample_merge):
    publication = outputs.build_publication(sample_merge, AS_OF, UPDATED, "https://cpscovid.com/")

    assert set(publication.objects) == {
        "data/allCpsCovidData.csv",
        "data/CPStotals.csv",
        "data/newFormatTest.csv",
        "newcases.html",
    }
    assert {k: t for k, (_, t) in publication.objects.items()} == {
        "data/allCpsCovidData.csv": "text/csv; charset=utf-8",
        "data/CPStotals.csv": "text/csv; charset=utf-8",
        "data/newFormatTest.csv": "text/csv; charset=utf-8",
        "newcases.html": "text/html; charset=utf-8",
    }
    schools, totals, transposed = (publication.objects[f"data/{n}"][0] for n in CSV_FILES)
    assert schools == history.csv_bytes(sample_merge.schools)
    assert totals == history.csv_bytes(merge.district_totals(sample_merge.schools))
    assert transposed == history.csv_bytes(merge.transposed(sample_merge.schools))
    assert totals.endswith(b"\n20210923,22,2527,96,13.71428571,246,17.57142857\n")

    assert publication.notifies
    assert publication.subject == "CPS COVID update: 22 new cases (Sep. 23, 2021)"
    assert len(publication.subject) <= 100
    assert "New cases: 22\nSchools affected: 13\n" in publication.message
    assert "Update: 04:05 PM, Sep. 23, 2021" in publication.message
    page = publication.objects["newcases.html"][0].decode()
    assert "LAKE VIEW-STEM ACADEMY" in page
    assert [r.suite for r in publication.reports] == ["published_schools", "published_totals"]
    assert all(r.success and not r.warnings for r in publication.reports)


def test_a_publication_without_moved_cases_has_only_the_three_csv_files(sample_merge, sample_feed):
    again = merge.apply_feed(sample_merge.schools, sample_feed.totals, AS_OF, ignore_ids=frozenset({"610377"}))
    assert again.changes.empty

    publication = outputs.build_publication(again, AS_OF, UPDATED, "https://cpscovid.com")

    assert set(publication.objects) == {f"data/{n}" for n in CSV_FILES}
    assert publication.subject is None
    assert publication.message is None
    assert not publication.notifies
    first = outputs.build_publication(sample_merge, AS_OF, UPDATED, "https://cpscovid.com")
    for key in publication.objects:
        assert publication.objects[key] == first.objects[key]


def test_a_correction_alone_still_publishes_the_page(make_schools, make_totals):
    schools = make_schools(["20210921", "20210922"], {"609772": [2, 1]})
    result = merge.apply_feed(schools, make_totals(**{"609772": 1}), AS_OF)
    publication = outputs.build_publication(result, AS_OF, UPDATED, "https://cpscovid.com")

    assert "newcases.html" in publication.objects
    assert publication.subject == "CPS COVID update: 0 new cases (Sep. 23, 2021)"
    assert "Corrections (cases removed by the district): ADDAMS (-2)" in publication.message


def test_a_correction_inside_the_14_day_window_publishes(make_schools, make_totals):
    """Found by the soak: a -1 ten days back makes 14Total lower than 7Total, which is right, not invalid."""
    days = [f"202109{d:02d}" for d in range(1, 23)]
    schools = make_schools(days, {"609772": [2] + [0] * 21, "609773": [0] * 22})
    corrected = merge.apply_feed(schools, make_totals(**{"609772": 1}), date(2021, 9, 13))
    later = merge.apply_feed(corrected.schools, make_totals(**{"609772": 1, "609773": 3}), AS_OF)
    addams = later.schools.set_index("CPS_School_ID").loc["609772"]
    assert (addams["7Total"], addams["14Total"], addams["21Total"]) == (0, -1, -1)

    publication = outputs.build_publication(later, AS_OF, UPDATED, "https://cpscovid.com")

    assert all(report.success for report in publication.reports)


def test_windows_that_disagree_with_their_days_are_never_published(make_schools, make_totals):
    result = merge.apply_feed(make_schools(["20210922"], {"609772": [1]}), make_totals(**{"609772": 3}), AS_OF)
    stale = dataclasses.replace(result, schools=result.schools.assign(**{"7Total": [1]}))
    with pytest.raises(ValidationFailed, match=r"on 7Total, days_7Total failed .*7Total=1"):
        outputs.build_publication(stale, AS_OF, UPDATED, "https://cpscovid.com")


def test_drift_is_never_published(real_schools):
    unrepaired = merge.MergeResult(
        schools=real_schools, day="20210922", changes=pd.DataFrame({"new_cases": pd.Series(dtype="int64")})
    )
    with pytest.raises(ValidationFailed, match=r"on gTotal, counted_total failed .*row 38: .*BLAIR"):
        outputs.build_publication(unrepaired, date(2021, 9, 22), UPDATED, "https://cpscovid.com")


def test_a_history_published_with_the_vaccination_columns_last_is_put_in_the_front_ends_layout(
    make_schools, make_totals
):
    """What we published until 2026-12: ``Student_Count, Vax_First_Dose, Vax_Complete`` after the days."""
    old = make_schools(
        ["20210921", "20210922"],
        {"609772": [1, 2], "610212": [0, 3]},
        trailing={"Student_Count": [700, 410], "Vax_First_Dose": [400, 200], "Vax_Complete": [300, 100]},
    )
    feed = inputs.Feed("health-api-json", make_totals(**{"609772": 4, "610212": 3}), [])
    read = inputs.read_history(history.csv_bytes(old), None, NAMES)
    result = applying.apply(feed, read, AS_OF)

    columns = result.schools.columns.tolist()
    assert columns[:12] == [
        *(SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID),
        *("Student_Count", "Vax_Complete", "Vax_First_Dose"),
        *("7Total", "14Total", "21Total", GTOTAL, "preSY2122"),
    ]
    assert columns[12:] == ["20210921", "20210922", "20210923"]
    assert result.schools[["Student_Count", "Vax_Complete", "Vax_First_Dose"]].values.tolist() == [
        [700, 300, 400],
        [410, 100, 200],
    ]  # every value kept
    assert [e.tag for e in result.events][:1] == ["migration"]
    assert "Student_Count, Vax_Complete, Vax_First_Dose moved after CPS_School_ID" in str(result.events[0])

    again = inputs.read_history(history.csv_bytes(result.schools), None, NAMES)
    assert again.events == []  # once: what was written is in the layout


def test_a_new_school_is_published_at_its_place_by_name_after_administrative(make_schools, make_totals):
    schools = make_schools(["20210922"], {"999999": [0], "609772": [1], "610212": [2]})
    names = schools[SCHOOL].tolist()
    profiles = pd.DataFrame(
        {
            SCHOOL_ID: ["400001", "400002"],
            SCHOOL: ["AAA FIRST", "ZZZ LAST"],
            LATITUDE: [41.8, 41.9],
            LONGITUDE: [-87.6] * 2,
        }
    )
    totals = make_totals(**{"400001": 1, "400002": 1})
    result = merge.apply_feed(schools, totals, AS_OF, profiles=profiles)
    assert result.schools[SCHOOL].tolist() == [names[0], "AAA FIRST", *names[1:], "ZZZ LAST"]
    assert sorted(result.changes[SCHOOL].tolist()) == ["AAA FIRST", "ZZZ LAST"]
    assert result.schools.loc[result.schools[SCHOOL] == "AAA FIRST", AS_OF.strftime("%Y%m%d")].tolist() == [1]


# --- resumed_objects -------------------------------------------------------------------------------------
