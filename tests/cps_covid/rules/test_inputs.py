"""The update's inputs: the published history read and validated, new schools and their profiles."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from cps_covid.errors import InputError
from cps_covid.rules import inputs
from cps_covid.rules.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID
from cps_covid.rules.validation import ValidationFailed

NAMES = ("allCpsCovidData.csv", "CPStotals.csv")


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
