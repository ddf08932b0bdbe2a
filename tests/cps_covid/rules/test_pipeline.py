"""The shared steps: read and validate the history, and build what one update publishes."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from cps_covid.errors import ConcurrentWriteError, InputError
from cps_covid.rules import applying, history, inputs, merge, outputs, publish_plan
from cps_covid.rules.ledger import Entry
from cps_covid.rules.publish_plan import plan_writes
from cps_covid.rules.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID
from cps_covid.rules.validation import ValidationFailed

AS_OF = date(2021, 9, 23)
UPDATED = datetime(2021, 9, 23, 16, 5, tzinfo=ZoneInfo("America/Chicago"))
NAMES = ("allCpsCovidData.csv", "CPStotals.csv")
CSV_FILES = ("allCpsCovidData.csv", "CPStotals.csv", "newFormatTest.csv")


def cells(*changes: tuple[int, str, str]):
    """An edit setting ``(index, column, text)`` cells; index 0 is line 2 of the file."""

    def edit(frame: pd.DataFrame) -> None:
        for index, column, text in changes:
            frame.loc[index, column] = text

    return edit


def edited(payload: bytes, edit) -> bytes:
    """The CSV with every cell kept as its text, changed in place or replaced by ``edit(frame)``."""
    frame = pd.read_csv(io.BytesIO(payload), dtype=str, keep_default_na=False)
    replaced = edit(frame)
    return (frame if replaced is None else replaced).to_csv(index=False).encode()


# --- read_history ------------------------------------------------------------------------------------


def test_the_real_history_passes_with_drift_warnings(real_history, real_schools):
    assert all(r.success for r in real_history.reports)
    assert [r.suite for r in real_history.reports] == ["history_cells", "history_schools", "history_totals"]
    pd.testing.assert_frame_equal(real_history.schools, real_schools)

    schools_warnings = [w for w in real_history.warnings if w.startswith("allCpsCovidData.csv")]
    totals_warnings = [w for w in real_history.warnings if w.startswith("CPStotals.csv")]
    assert len(schools_warnings) == 1
    assert "BLAIR" in schools_warnings[0]
    assert "610087" in schools_warnings[0]
    assert "row 38: gTotal=1" in schools_warnings[0]
    assert "day_sum=2" in schools_warnings[0]
    assert len(totals_warnings) == 2
    daily, running = totals_warnings
    assert "on daily, recomputed_daily" in daily
    assert "date=20210826" in daily and "date=20210922" in daily
    assert "2 unexpected value(s)" in daily
    assert "on running, recomputed_running" in running
    assert "28 unexpected value(s)" in running
    assert "date=20210826" in running
    assert "date=20210825" not in " ".join(real_history.warnings)


def test_the_history_without_totals_is_checked_alone(real_files):
    hist = inputs.read_history(real_files["allCpsCovidData.csv"], None, NAMES)
    assert [r.suite for r in hist.reports] == ["history_cells", "history_schools"]
    assert len(hist.warnings) == 1


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            cells((1, "20210915", "two")),
            ["row 3", "column='20210915'", "value='two'"],
            id="text-in-a-day-column",
        ),
        pytest.param(
            cells((1, "20210915", "")),
            ["row 3", "column='20210915'", "value=''"],
            id="empty-day-cell",
        ),
        pytest.param(cells((4, GTOTAL, "2.5")), ["row 6", f"column='{GTOTAL}'", "value='2.5'"], id="frac"),
        pytest.param(
            cells((2, SCHOOL_ID, "609772")),
            ["expect_column_values_to_be_unique on CPS_School_ID", "row 3: CPS_School_ID='609772'", "row 4"],
            id="duplicated-id",
        ),
        pytest.param(
            cells((2, SCHOOL_ID, "60977")),
            ["row 4: CPS_School_ID='60977'"],
            id="short-id",
        ),
        pytest.param(
            cells((9, LATITUDE, "40.7128")),
            ["on Latitude", "row 11: Latitude=40.7128", "School='ARIEL'"],
            id="latitude-outside-chicago",
        ),
        pytest.param(
            cells((9, LONGITUDE, "87.6298")),
            ["on Longitude", "row 11: Longitude=87.6298"],
            id="longitude-sign-lost",
        ),
        pytest.param(
            cells((3, GTOTAL, "0"), (3, "preSY2122", "1")),
            ["gTotal, carry_over_sum", "row 5: gTotal=0"],
            id="carry-over-above-gtotal",
        ),
    ],
)
def test_a_broken_history_stops_naming_row_column_and_value(real_files, edit, expected):
    payload = edited(real_files["allCpsCovidData.csv"], edit)
    with pytest.raises(ValidationFailed) as raised:
        inputs.read_history(payload, real_files["CPStotals.csv"], NAMES)
    message = str(raised.value)
    assert message.startswith("validation failed, nothing was written: allCpsCovidData.csv: ")
    for part in expected:
        assert part in message


def test_a_coordinate_that_is_not_a_number_stops(real_files):
    payload = edited(real_files["allCpsCovidData.csv"], cells((9, LATITUDE, "north")))
    with pytest.raises(InputError, match=r"^allCpsCovidData\.csv: line 11: Latitude is 'north', not a number$"):
        inputs.read_history(payload, real_files["CPStotals.csv"], NAMES)


@pytest.mark.parametrize(("which", "column"), [(0, GTOTAL), (0, LONGITUDE), (0, SCHOOL), (1, "running"), (1, "date")])
def test_a_missing_column_stops_naming_file_and_column(real_files, which, column):
    payloads = [real_files["allCpsCovidData.csv"], real_files["CPStotals.csv"]]
    payloads[which] = edited(payloads[which], lambda f: f.drop(columns=[column]))
    with pytest.raises(InputError, match=rf"^{NAMES[which]}: line 1: missing column\(s\) {column} \(found"):
        inputs.read_history(*payloads, NAMES)


def test_an_empty_history_file_stops(real_files):
    with pytest.raises(InputError, match=r"^CPStotals\.csv: the file is empty$"):
        inputs.read_history(real_files["allCpsCovidData.csv"], b"", NAMES)


# --- build_publication --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_feed(feed_dir) -> inputs.Feed:
    return inputs.read_feed((feed_dir / "2021-09-23-cases.csv").read_bytes(), "2021-09-23-cases.csv")


@pytest.fixture(scope="module")
def sample_merge(real_history, sample_feed, feed_dir) -> merge.MergeResult:
    ignore = frozenset({"610377"})
    known = json.loads((feed_dir / "school-profiles.json").read_text())
    wanted = inputs.new_school_ids(sample_feed, real_history.schools, ignore)
    assert wanted == ["400199"]
    found = [p | {SCHOOL_ID: str(p["SchoolID"])} for p in known if str(p["SchoolID"]) in wanted]
    profiles = inputs.profiles_frame(found)
    return merge.apply_feed(real_history.schools, sample_feed.totals, AS_OF, profiles=profiles, ignore_ids=ignore)


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


def test_new_school_ids_skip_known_and_ignored(real_schools, make_totals):
    feed = inputs.Feed("health-api-json", make_totals(**{"609772": 1, "400199": 2, "610377": 1, "400001": 1}), [])
    assert inputs.new_school_ids(feed, real_schools, frozenset({"610377"})) == ["400001", "400199"]


def test_profiles_frame_reads_the_profile_fields():
    frame = inputs.profiles_frame(
        [
            {
                "CPS_School_ID": 400199,
                "Short_Name": "LAKE VIEW - STEM ACADEMY",
                "School_Latitude": "41.9402",
                "School_Longitude": -87.6587,
            },
            {"CPS_School_ID": "400200", "Short_Name": "NO PLACE", "School_Latitude": "n/a"},
        ]
    )
    assert list(frame.columns) == [SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE]
    assert frame[SCHOOL_ID].tolist() == ["400199", "400200"]
    assert frame.loc[0, LATITUDE] == 41.9402
    assert frame.loc[0, LONGITUDE] == -87.6587
    assert frame.loc[1, [LATITUDE, LONGITUDE]].isna().all()
    assert inputs.profiles_frame([]).columns.tolist() == [SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE]


# --- the front end's layout ---------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def claimed(real_files, feed_dir, sample_merge) -> tuple[Entry, bytes, dict[str, tuple[bytes, str]]]:
    """An entry claimed for the sample feed on the real history, and the objects it planned."""
    payload = (feed_dir / "2021-09-23-cases.csv").read_bytes()
    added = sample_merge.schools[sample_merge.schools[SCHOOL_ID] == "400199"]
    entry = Entry.claiming(
        as_of=AS_OF,
        now=UPDATED,
        flow_run="r1",
        raw_key="raw/2021-09-23-cases.csv",
        sha256="0" * 64,
        source="feed.csv",
        fetched_at=UPDATED,
        lease_seconds=900,
        new_season=None,
        ignore_ids=frozenset({"610377"}),
        profiles=added[[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE]].to_dict("records"),
        changes=[],
    )
    result = applying.replay(entry, payload, real_files["allCpsCovidData.csv"], real_files["CPStotals.csv"])
    objects = outputs.build_publication(result, AS_OF, UPDATED, "https://cpscovid.com/").objects
    writes = plan_writes(objects, {})
    return entry.planned(writes, "subject", "message"), payload, objects


def test_a_resumed_entry_gives_the_bytes_it_planned_whether_or_not_its_table_was_written(real_files, claimed):
    entry, payload, planned = claimed
    before = outputs.resumed_objects(
        entry, payload, real_files["allCpsCovidData.csv"], real_files["CPStotals.csv"], {}, "https://cpscovid.com/"
    )
    assert before == planned

    written_schools, written_totals = planned[publish_plan.SCHOOLS_KEY][0], planned[publish_plan.TOTALS_KEY][0]
    after = outputs.resumed_objects(entry, payload, written_schools, written_totals, {}, "https://cpscovid.com/")
    assert after == planned


def test_a_resume_on_a_table_someone_else_changed_is_refused_naming_the_objects(real_files, claimed):
    entry, payload, _ = claimed
    edited = real_files["allCpsCovidData.csv"].replace(b"ADDAMS", b"ADAMS", 1)  # a hand edit since the claim

    with pytest.raises(ConcurrentWriteError, match=rf"^update {entry.id} cannot be resumed: data/allCpsCovidData\.csv"):
        outputs.resumed_objects(entry, payload, edited, real_files["CPStotals.csv"], {}, "https://cpscovid.com/")


def test_a_resume_whose_objects_are_not_the_planned_set_is_refused(real_files, claimed):
    entry, payload, _ = claimed
    without_page = dataclasses.replace(entry, objects={k: v for k, v in entry.objects.items() if k != "newcases.html"})
    extra = dataclasses.replace(without_page, objects=without_page.objects | {"data/other.csv": "0" * 32})

    with pytest.raises(ConcurrentWriteError, match="its objects would differ"):
        outputs.resumed_objects(extra, payload, real_files["allCpsCovidData.csv"], real_files["CPStotals.csv"], {}, "x")
