"""The vaccination flow end to end: real Prefect API, moto server, loopback source, and a real race."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from standins.fault_proxy import FaultProxy

from cps_covid.rules import history, inputs, merge, open_data, outputs, publish_plan, vaccination
from flows.update import run_update
from flows.vaccination import vaccination_update
from local.feed_server import Route

pytestmark = pytest.mark.usefixtures("prefect_api")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "data/feeds/2021-09-23-vaccination.json").read_bytes()
HISTORY = ROOT / "data/history-2021-09-22"
AS_OF = date(2021, 9, 23)
KEYS = [publish_plan.SCHOOLS_KEY, publish_plan.TRANSPOSED_KEY]


@pytest.fixture
def source(aws, feeds, monkeypatch) -> str:
    url = feeds.route("/cps/SchoolCOVIDStudentVaccinationRate", Route(SAMPLE, "application/json"))
    monkeypatch.setenv("CPS_COVID_VACCINATION_SOURCE_URL", url)
    return url


def run(**parameters):
    state = vaccination_update(return_state=True, **parameters)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
    return state, flow_run, {a.key: a for a in artifacts if a.key}


def read(aws, key: str) -> bytes:
    return aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()


def versions(aws, key: str) -> int:
    listed = aws.client("s3").list_object_versions(Bucket=aws.bucket, Prefix=key).get("Versions", [])
    return len([v for v in listed if v["Key"] == key])


def dashboard(keys, lead: str = "") -> list[str]:
    """The dashboard's files among ``keys`` (the open dataset beside them is tested in test_open_dataset.py)."""
    return sorted(k for k in keys if not k.startswith(f"{lead}{open_data.OPEN_PREFIX}"))


def invalidated_paths(aws) -> list[list[str]]:
    client = aws.client("cloudfront")
    items = client.list_invalidations(DistributionId=aws.distribution_id)["InvalidationList"].get("Items", [])
    return [
        sorted(
            client.get_invalidation(DistributionId=aws.distribution_id, Id=i["Id"])["Invalidation"][
                "InvalidationBatch"
            ]["Paths"]["Items"]
        )
        for i in items
    ]


def table(payload: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(payload), dtype={"CPS_School_ID": str})


def sample_record(school_id: str) -> dict:
    return next(r for r in json.loads(SAMPLE) if str(r["SchoolID"]) == school_id)


def test_figures_are_published_after_the_school_id_and_nothing_else_moves(aws, source) -> None:
    original = (HISTORY / "allCpsCovidData.csv").read_bytes()
    state, flow_run, artifacts = run(as_of=AS_OF)

    assert state.is_completed(), state.message
    assert re.fullmatch(r"vaccination-2021-09-23 at \d\d:\d\d:\d\d", flow_run.name), flow_run.name
    summary = state.result()
    assert (summary["schools_in_feed"], summary["schools_updated"], summary["attempts"]) == (517, 517, 1)
    assert dashboard(w["key"] for w in summary["written"]) == sorted(KEYS)
    # the seeded history had no open dataset: the figures' update writes it whole, with the table
    assert "data/open/schools.csv" in {w["key"] for w in summary["written"]}
    assert dashboard(invalidated_paths(aws)[0], "/") == [f"/{k}" for k in sorted(KEYS)]
    assert versions(aws, publish_plan.TOTALS_KEY) == 1 and aws.sent_notifications() == []

    published = read(aws, publish_plan.SCHOOLS_KEY)
    old_lines, new_lines = original.decode().splitlines(), published.decode().splitlines()
    assert len(old_lines) == len(new_lines)

    def without_figures(line: str) -> str:
        cells = line.split(",")
        return ",".join(cells[:4] + cells[7:])

    assert all(without_figures(new) == old for old, new in zip(old_lines, new_lines, strict=True))
    assert new_lines[0].startswith("School,Latitude,Longitude,CPS_School_ID,Student_Count,Vax_Complete,Vax_First_Dose,")
    assert new_lines[0].endswith(",20210922")

    schools = table(published).set_index("CPS_School_ID")
    addams = sample_record("609772")
    assert schools.loc["609772", vaccination.COLUMNS].tolist() == [
        addams["OverallStudentCount"],
        addams["OverallCompletedCount"],
        addams["OverallOneDoseCount"],
    ]
    nulls = [r for r in json.loads(SAMPLE) if r["OverallStudentCount"] is None]
    assert nulls and (schools.loc[[str(r["SchoolID"]) for r in nulls], vaccination.COLUMNS] == 0).all().all()
    assert schools.loc["999999", vaccination.COLUMNS].tolist() == [0, 0, 0]  # ADMINISTRATIVE: not in the feed
    assert read(aws, publish_plan.TRANSPOSED_KEY) == history.csv_bytes(merge.transposed(table(published)))
    assert "Events" not in artifacts["vaccination-summary"].data  # placed, not moved: no layout event
    assert "517 of 517 school(s) changed" in artifacts["vaccination-summary"].data


def test_the_same_feed_again_writes_and_invalidates_nothing(aws, source) -> None:
    first, _, _ = run(as_of=AS_OF)
    assert first.is_completed(), first.message

    second, _, _ = run(as_of=date(2021, 9, 24))

    assert second.is_completed()
    assert second.result()["written"] == [] and second.result()["schools_updated"] == 0
    assert [versions(aws, k) for k in KEYS] == [2, 2] and len(invalidated_paths(aws)) == 1


def test_a_case_update_after_the_vaccination_update_keeps_its_columns(aws, source) -> None:
    assert run(as_of=AS_OF)[0].is_completed()
    with_figures = table(read(aws, publish_plan.SCHOOLS_KEY)).set_index("CPS_School_ID")[vaccination.COLUMNS]

    state = run_update(as_of=AS_OF)

    assert state.is_completed(), state.message
    schools = table(read(aws, publish_plan.SCHOOLS_KEY))
    assert list(schools.columns[4:8]) == [*vaccination.COLUMNS, "7Total"] and schools.columns[-1] == "20210923"
    kept = schools.set_index("CPS_School_ID").loc[with_figures.index, vaccination.COLUMNS]
    pd.testing.assert_frame_equal(kept, with_figures)
    assert (schools.set_index("CPS_School_ID").loc["400199", vaccination.COLUMNS] == 0).all()  # the new school

    # CPStotals and every case column are what the same update gives without the vaccination columns
    plain = expected_case_update()
    assert read(aws, publish_plan.TOTALS_KEY) == plain[publish_plan.TOTALS_KEY][0]
    cases_only = schools.drop(columns=vaccination.COLUMNS)
    assert history.csv_bytes(cases_only) == plain[publish_plan.SCHOOLS_KEY][0]


def expected_case_update() -> dict[str, tuple[bytes, str]]:
    """The case flow's tables for 2021-09-23 from the bundled history, by the pure pipeline (no vaccination)."""
    hist = inputs.read_history(
        (HISTORY / "allCpsCovidData.csv").read_bytes(), (HISTORY / "CPStotals.csv").read_bytes(), ("s", "t")
    )
    feed = inputs.read_feed((ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes(), "feed")
    profiles = [
        p | {"CPS_School_ID": str(p["SchoolID"])}
        for p in json.loads((ROOT / "data/feeds/school-profiles.json").read_text())
    ]
    result = merge.apply_feed(
        hist.schools,
        feed.totals,
        AS_OF,
        profiles=inputs.profiles_frame(profiles),
        ignore_ids=frozenset({"610377", "610012", "609703"}),
    )
    updated = datetime(2021, 9, 23, 12, tzinfo=ZoneInfo("America/Chicago"))
    return outputs.build_publication(result, AS_OF, updated, "https://cpscovid.com").objects


def test_a_case_update_published_during_the_merge_is_kept_and_merged_into(aws, source, monkeypatch) -> None:
    """The case flow writes between this flow's read and its write: 412, reread, merge again, write."""
    theirs = expected_case_update()

    def case_flow_publishes() -> None:
        s3 = aws.client("s3")
        for key in (publish_plan.SCHOOLS_KEY, publish_plan.TRANSPOSED_KEY):
            s3.put_object(Bucket=aws.bucket, Key=key, Body=theirs[key][0])

    with FaultProxy(aws.endpoint_url) as proxy:
        done = proxy.on("GET", f"/{aws.bucket}/{publish_plan.SCHOOLS_KEY}", case_flow_publishes)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        state, _, artifacts = run(as_of=AS_OF)

    assert done.is_set()
    assert state.is_completed(), state.message
    assert state.result()["attempts"] == 2
    schools = table(read(aws, publish_plan.SCHOOLS_KEY))
    assert list(schools.columns[4:7]) == vaccination.COLUMNS and schools.columns[-1] == "20210923"
    assert history.csv_bytes(schools.drop(columns=vaccination.COLUMNS)) == theirs[publish_plan.SCHOOLS_KEY][0]
    assert versions(aws, publish_plan.SCHOOLS_KEY) == 3  # seeded, theirs, ours: nothing overwritten unseen
    assert "Attempts (412 from a concurrent writer): 2" in artifacts["vaccination-summary"].data


def test_a_race_lost_after_the_first_write_still_reports_and_invalidates_both(aws, source, monkeypatch) -> None:
    """Ours lands on allCpsCovidData.csv, then another writer replaces newFormatTest.csv: 412, reread, rewrite."""
    theirs = b"School,ADDAMS\nLatitude,41.7\n"

    def other_writer() -> None:
        aws.client("s3").put_object(Bucket=aws.bucket, Key=publish_plan.TRANSPOSED_KEY, Body=theirs)

    with FaultProxy(aws.endpoint_url) as proxy:
        done = proxy.on("PUT", f"/{aws.bucket}/{publish_plan.SCHOOLS_KEY}", other_writer)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        state, _, _ = run(as_of=AS_OF)

    assert done.is_set() and state.is_completed(), state.message
    summary = state.result()
    assert summary["attempts"] == 2 and summary["schools_updated"] == 517
    # the first attempt's write is not forgotten
    assert [w["key"] for w in summary["written"] if not w["key"].startswith(open_data.OPEN_PREFIX)] == KEYS
    assert dashboard(invalidated_paths(aws)[0], "/") == [f"/{k}" for k in sorted(KEYS)]
    published = table(read(aws, publish_plan.SCHOOLS_KEY))
    assert read(aws, publish_plan.TRANSPOSED_KEY) == history.csv_bytes(merge.transposed(published))
    assert versions(aws, publish_plan.TRANSPOSED_KEY) == 3  # seeded, theirs, ours


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        (
            [{"SchoolID": 609772, "OverallStudentCount": -3, "OverallOneDoseCount": 1, "OverallCompletedCount": 1}],
            "row 1: Student_Count='-3', CPS_School_ID='609772'",
        ),
        (
            [
                {"SchoolID": 609772, "OverallStudentCount": 10, "OverallOneDoseCount": 1, "OverallCompletedCount": 1},
                {"SchoolID": 609772, "OverallStudentCount": 12, "OverallOneDoseCount": 1, "OverallCompletedCount": 1},
            ],
            "expect_column_values_to_be_unique on CPS_School_ID failed",
        ),
    ],
)
def test_invalid_figures_stop_the_run_before_anything_is_written(aws, source, feeds, records, expected) -> None:
    url = feeds.route("/bad-vaccination.json", Route(json.dumps(records).encode(), "application/json"))
    state, _, artifacts = run(as_of=AS_OF, source=url)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "nothing was written" in message and expected in message
    assert "vaccination-validation" in artifacts
    assert [versions(aws, k) for k in KEYS] == [1, 1] and invalidated_paths(aws) == []


def test_a_malformed_feed_is_named(aws, source, feeds) -> None:
    body = b'[{"SchoolID": 609772, "OverallStudentCount": 3}]'
    state, _, _ = run(as_of=AS_OF, source=feeds.route("/malformed.json", Route(body, "application/json")))
    assert state.is_failed()
    assert "record 1 has no field OverallCompletedCount, OverallOneDoseCount" in str(
        state.result(raise_on_failure=False)
    )
    assert [versions(aws, k) for k in KEYS] == [1, 1]


def test_dry_run_plans_and_writes_nothing(aws, source) -> None:
    state, flow_run, _ = run(as_of=AS_OF, dry_run=True)
    assert re.fullmatch(r"vaccination-2021-09-23 at \d\d:\d\d:\d\d \(dry run\)", flow_run.name), flow_run.name
    assert dashboard(state.result()["planned"]) == sorted(KEYS) and state.result()["written"] == []
    assert [versions(aws, k) for k in KEYS] == [1, 1] and invalidated_paths(aws) == []
