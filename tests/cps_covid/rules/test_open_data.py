"""The open dataset: tidy tables that rebuild the dashboard's table byte for byte, and a package that validates."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from cps_covid.rules import history, merge, open_data
from cps_covid.rules.publish_plan import CSV_TYPE
from cps_covid.rules.schema import GTOTAL, SCHOOL_ID
from cps_covid.rules.season_calendar import DISTRICT_SEASONS, SeasonStart, parse_calendar

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data/history-2021-09-22/allCpsCovidData.csv"
CALENDAR = parse_calendar(DISTRICT_SEASONS)
BLAIR = "610087"
SOURCES = {"feed": "https://example.org/cps/cases", "profiles": "https://example.org/profile?SchoolId={school_id}"}
SMALL = """\
School,Latitude,Longitude,CPS_School_ID,Student_Count,Vax_Complete,Vax_First_Dose,7Total,14Total,21Total,gTotal,\
preSY2122,SY2122,20210828,20210829,20210830,20210923
ADMINISTRATIVE,41.882358,-87.62813,999999,0,0,0,0,0,0,2,2,0,2,0,0,0
ADDAMS,41.6987389,-87.5329763,609772,512,301,340,0,0,0,3,1,0,1,0,3,-1
NEW SCHOOL,,,400199,,,,0,0,0,0,0,0,0,0,0,0
"""


def published(payload: bytes) -> pd.DataFrame:
    """A per-school table read as the project reads the published one."""
    return history.typed_schools(history.read_table(payload, "allCpsCovidData.csv"))


@pytest.fixture(scope="module")
def sample_bytes() -> bytes:
    return SAMPLE.read_bytes()


@pytest.fixture(scope="module")
def sample(sample_bytes) -> pd.DataFrame:
    return published(sample_bytes)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    """Vaccination figures (one school without), two carry-overs, a correction, an all-zero day, no coordinates."""
    return merge.recompute_windows(published(SMALL.encode()))


def errata_rows() -> pd.DataFrame:
    rows = [
        ["2021-09-23", BLAIR, "BLAIR", "drift-repair", GTOTAL, 1, 2, "day columns sum to 2 but gTotal was 1", "u1"],
        ["", "*", "DISTRICT", "migration", "", None, None, "a column moved", "read allCpsCovidData.csv"],
    ]
    return pd.DataFrame(rows, columns=open_data.ERRATA_COLUMNS).astype({"old": "Int64", "new": "Int64"})


def provenance_rows() -> pd.DataFrame:
    row = ["u1", "2021-09-23", "2021-09-23T07:00:05.123456-05:00", "2021-09-23T07:00:09-05:00"]
    row += ["https://example.org/cps/cases", "data/raw/2021-09-23.json", "ab" * 32, "flow-run-1"]
    return pd.DataFrame([row], columns=open_data.PROVENANCE_COLUMNS)


def objects_of(schools: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    return open_data.package_objects(
        schools, CALENDAR, errata_rows(), provenance_rows(), "2021-09-23T07:00:09-05:00", SOURCES
    )


# --- the tables ------------------------------------------------------------------------------------------------------


def test_the_real_history_rebuilds_from_its_tidy_tables_byte_for_byte(sample, sample_bytes):
    rebuilt = open_data.wide_table(open_data.tidy_tables(sample, CALENDAR))

    assert history.csv_bytes(rebuilt) == sample_bytes
    pd.testing.assert_frame_equal(rebuilt, sample, check_column_type=False)  # dtypes too


def test_a_table_with_vaccination_two_carry_overs_a_correction_and_an_empty_day_rebuilds_byte_for_byte(small):
    tables = open_data.tidy_tables(small, CALENDAR)

    assert history.csv_bytes(open_data.wide_table(tables)) == history.csv_bytes(small)
    cases = tables["cases"].set_index(["school_id", "date"])
    assert cases.loc[("609772", "2021-09-23"), ["new_cases", "removed_cases"]].tolist() == [0, 1]
    assert tables["carry_overs"][["school_id", "carry_over", "position", "cases"]].values.tolist()[:4] == [
        ["999999", "preSY2122", 1, 2],
        ["999999", "SY2122", 2, 0],
        ["609772", "preSY2122", 1, 1],
        ["609772", "SY2122", 2, 0],
    ]
    days = tables["district_days"]
    assert days["date"].tolist() == ["2021-08-28", "2021-08-29", "2021-08-30", "2021-09-23"]
    assert days[["new_cases", "removed_cases", "net_cases", "running_total"]].values.tolist() == [
        [3, 0, 3, 3],
        [0, 0, 0, 3],
        [3, 0, 3, 6],
        [0, 1, -1, 5],
    ]
    schools = tables["schools"].set_index("school_id")
    assert schools.loc["400199", ["student_count", "first_case_day", "last_case_day"]].isna().all()
    assert schools.loc["609772", ["student_count", "first_case_day", "last_case_day"]].tolist() == [
        512,
        "2021-08-28",
        "2021-08-30",
    ]


def test_a_table_without_vaccination_columns_rebuilds_without_them(sample):
    tables = open_data.tidy_tables(sample, CALENDAR)

    assert tables["schools"][["student_count", "vax_complete", "vax_first_dose"]].isna().all().all()
    assert "Student_Count" not in open_data.wide_table(tables).columns


def test_every_case_is_counted_in_its_schools_total_but_blairs_drift(sample):
    cases = open_data.tidy_tables(sample, CALENDAR)["cases"]

    net = (cases["new_cases"] - cases["removed_cases"]).groupby(cases["school_id"]).sum()
    totals = sample.set_index(SCHOOL_ID)[GTOTAL]
    differ = totals[net.reindex(totals.index, fill_value=0) != totals]
    assert differ.to_dict() == {BLAIR: 1}
    assert net[BLAIR] == 2
    assert (cases["new_cases"] >= 0).all() and (cases["removed_cases"] >= 0).all()
    assert ((cases["new_cases"] > 0) != (cases["removed_cases"] > 0)).all()  # a row per changed count, never both


def test_each_day_falls_in_its_season_of_the_district_calendar(small, sample):
    assert open_data.season_of(date(2021, 8, 29), CALENDAR) == "preSY2122"
    assert open_data.season_of(date(2021, 8, 30), CALENDAR) == "SY2122"
    assert open_data.season_of(date(2022, 6, 14), CALENDAR) == "Summer_22"
    seasons = open_data.tidy_tables(small, CALENDAR)["cases"].set_index("date")["season"]
    assert seasons["2021-08-28"].unique().tolist() == ["preSY2122"]
    assert seasons["2021-09-23"] == "SY2122"
    real = open_data.tidy_tables(sample, CALENDAR)["cases"]
    assert set(real.loc[real["date"] < "2021-08-30", "season"]) == {"preSY2122"}
    assert set(real.loc[real["date"] >= "2021-08-30", "season"]) == {"SY2122"}


def test_without_a_calendar_the_season_is_empty(small):
    unsorted = [SeasonStart("B", date(2022, 1, 1)), SeasonStart("A", date(2021, 1, 1))]

    assert set(open_data.tidy_tables(small, [])["cases"]["season"].fillna("")) == {""}
    assert open_data.season_of(date(2021, 6, 1), unsorted) == "A"
    assert open_data.season_of(date(2020, 6, 1), unsorted) == "preA"


def test_a_column_that_fits_no_published_kind_is_refused_by_name(small):
    with pytest.raises(ValueError, match="Notes"):
        open_data.tidy_tables(small.assign(Notes="x"), CALENDAR)
    with pytest.raises(ValueError, match="published order"):
        open_data.tidy_tables(small[[*small.columns[:-2], small.columns[-1], small.columns[-2]]], CALENDAR)


def test_the_tables_have_the_documented_columns(sample):
    tables = open_data.tidy_tables(sample, CALENDAR)

    assert {name: list(t.columns) for name, t in tables.items()} == {t.name: t.columns for t in open_data.TABLES[:4]}
    assert open_data.ERRATA.columns == open_data.ERRATA_COLUMNS
    assert open_data.PROVENANCE.columns == open_data.PROVENANCE_COLUMNS
    assert set(open_data.KIND_MEANINGS) == set(merge.Tag)  # a new kind of event gets its meaning in the README


# --- the package -----------------------------------------------------------------------------------------------------


def test_the_package_is_every_table_as_csv_and_parquet_with_its_descriptor_and_codebook(sample):
    objects = objects_of(sample)

    names = [t.name for t in open_data.TABLES]
    assert set(objects) == {
        *(f"data/open/{n}.{ext}" for n in names for ext in ("csv", "parquet")),
        open_data.PACKAGE_KEY,
        open_data.README_KEY,
    }
    assert list(objects)[-1] == open_data.PACKAGE_KEY
    assert objects["data/open/cases.csv"][1] == CSV_TYPE
    assert objects["data/open/cases.parquet"][1] == "application/vnd.apache.parquet"
    assert objects[open_data.PACKAGE_KEY][1] == "application/json; charset=utf-8"
    assert objects[open_data.README_KEY][1] == "text/markdown; charset=utf-8"
    assert all(b"\r" not in body for key, (body, _) in objects.items() if not key.endswith(".parquet"))
    descriptor = json.loads(objects[open_data.PACKAGE_KEY][0])
    assert descriptor["name"] == "cps-covid-cases"
    assert descriptor["version"] == "1.0.0"
    assert descriptor["last_updated"] == "2021-09-23T07:00:09-05:00"
    assert descriptor["licenses"][0]["name"] == "CC-BY-4.0"
    assert [s.get("path") for s in descriptor["sources"]] == [SOURCES["feed"], SOURCES["profiles"]]
    assert descriptor["temporal"] == {"start": "2020-03-07", "end": "2021-09-22"}
    assert [r["path"] for r in descriptor["resources"]] == [f"{n}.csv" for n in names]
    readme = objects[open_data.README_KEY][0].decode()
    for text in ("cases.csv", "removed_cases", "preSY2122", "drift-repair", "BLAIR", "CC-BY-4.0", "24 hours"):
        assert text in readme


def test_sources_without_an_address_are_credited_without_one(small):
    objects = open_data.package_objects(small, CALENDAR, errata_rows()[:0], provenance_rows()[:0], "", {"feed": ""})

    descriptor = json.loads(objects[open_data.PACKAGE_KEY][0])
    assert all("path" not in s for s in descriptor["sources"])
    assert descriptor["last_updated"] == ""
    assert "Last updated: unknown" in objects[open_data.README_KEY][0].decode()


def test_the_same_inputs_give_the_same_bytes(sample):
    assert objects_of(sample) == objects_of(sample)


def test_each_parquet_file_reads_back_as_its_csv_table(sample):
    objects = objects_of(sample)
    import fastparquet  # imported by the package's writer, without its warning

    for table in open_data.TABLES:
        parquet = fastparquet.ParquetFile(io.BytesIO(objects[f"data/open/{table.name}.parquet"][0])).to_pandas()
        assert list(parquet.columns) == table.columns
        assert history.csv_bytes(parquet) == objects[f"data/open/{table.name}.csv"][0], table.name


# --- frictionless and other processes ----------------------------------------------------------------------------


def written(objects: dict[str, tuple[bytes, str]], folder: Path) -> Path:
    folder.mkdir()
    for key, (body, _) in objects.items():
        (folder / key.removeprefix(open_data.OPEN_PREFIX)).write_bytes(body)
    return folder / "datapackage.json"


def frictionless(descriptor: Path) -> tuple[bool, list[str]]:
    """``frictionless validate``'s verdict and its errors as ``resource: type: message``."""
    cli = Path(sys.executable).with_name("frictionless")
    done = subprocess.run([cli, "validate", "--json", descriptor], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout)
    errors = [f"{t['name']}: {e['type']}: {e['message']}" for t in report["tasks"] for e in t["errors"]]
    assert (done.returncode == 0) == report["valid"], done.stderr
    return report["valid"], errors + [f"package: {e['type']}: {e['message']}" for e in report["errors"]]


@pytest.mark.slow  # a subprocess: not in make check
def test_frictionless_validates_the_package_and_names_a_negative_count_and_an_unknown_school(sample, tmp_path):
    descriptor = written(objects_of(sample), tmp_path / "good")
    assert frictionless(descriptor) == (True, [])

    cases = (descriptor.parent / "cases.csv").read_text().splitlines(keepends=True)
    date_, school_id, new, removed, season = cases[1].rstrip("\n").split(",")
    negative = written(objects_of(sample), tmp_path / "negative")
    lines = [cases[0], f"{date_},{school_id},-1,{removed},{season}\n", *cases[2:]]
    (negative.parent / "cases.csv").write_text("".join(lines))
    valid, errors = frictionless(negative)
    assert not valid
    assert len(errors) == 1 and errors[0].startswith("cases: constraint-error:")
    assert '"new_cases"' in errors[0] and '"minimum" is "0"' in errors[0]

    unknown = written(objects_of(sample), tmp_path / "unknown")
    (unknown.parent / "cases.csv").write_text(
        "".join([cases[0], f"{date_},123456,{new},{removed},{season}\n", *cases[2:]])
    )
    valid, errors = frictionless(unknown)
    assert not valid
    assert len(errors) == 1 and errors[0].startswith("cases: foreign-key:")
    assert '"123456" not found in the lookup table "schools"' in errors[0]


@pytest.mark.slow  # a subprocess: not in make check
def test_another_process_writes_the_same_bytes(sample):
    script = f"""
import hashlib, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_open_data import objects_of, published, SAMPLE
objects = objects_of(published(SAMPLE.read_bytes()))
print("\\n".join(f"{{k}} {{hashlib.sha256(b).hexdigest()}}" for k, (b, _) in objects.items()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)

    assert done.returncode == 0, done.stderr
    here = "\n".join(f"{k} {hashlib.sha256(b).hexdigest()}" for k, (b, _) in objects_of(sample).items())
    assert done.stdout.strip() == here
