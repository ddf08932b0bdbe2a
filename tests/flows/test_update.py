"""The update flow end to end: real Prefect API, real moto server, loopback HTTP source."""

from __future__ import annotations

import inspect
import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId

from cps_covid.rules import open_data, publish_plan
from flows.update import run_update
from local.feed_server import Route

pytestmark = pytest.mark.usefixtures("prefect_api")

AS_OF = date(2021, 9, 23)
FEEDS = Path(__file__).resolve().parents[2] / "data/feeds"
KEYS = [publish_plan.SCHOOLS_KEY, publish_plan.TOTALS_KEY, publish_plan.TRANSPOSED_KEY, publish_plan.PAGE_KEY]


def versions(aws, key: str) -> list[dict]:
    listed = aws.client("s3").list_object_versions(Bucket=aws.bucket, Prefix=key).get("Versions", [])
    return [v for v in listed if v["Key"] == key]


def all_versions(aws) -> int:
    return sum(len(versions(aws, k)) for k in KEYS)


def invalidations(aws) -> list[dict]:
    client = aws.client("cloudfront")
    items = client.list_invalidations(DistributionId=aws.distribution_id)["InvalidationList"].get("Items", [])
    return [client.get_invalidation(DistributionId=aws.distribution_id, Id=i["Id"])["Invalidation"] for i in items]


def read(aws, key: str) -> bytes:
    return aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()


def dashboard(keys) -> list[str]:
    """The dashboard's files among ``keys`` (the open dataset, published beside them, has its own test)."""
    return sorted(k for k in keys if not k.startswith(open_data.OPEN_PREFIX))


def run(**parameters):
    state = run_update(**parameters)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
    return state, flow_run, {a.key: a for a in artifacts if a.key}


def test_run_publishes_merge_invalidates_and_notifies(aws, feeds) -> None:
    state, flow_run, artifacts = run(as_of=AS_OF)

    assert state.is_completed(), state.message
    assert re.fullmatch(r"update-2021-09-23 at \d\d:\d\d:\d\d", flow_run.name), flow_run.name  # reruns apart
    summary = state.result()
    assert summary["new_cases"] == 22 and summary["schools_affected"] == 13
    assert dashboard(w["key"] for w in summary["written"]) == sorted(KEYS)
    for key in (publish_plan.SCHOOLS_KEY, publish_plan.TOTALS_KEY, publish_plan.TRANSPOSED_KEY):
        assert len(versions(aws, key)) == 2, key
    head = aws.client("s3").head_object(Bucket=aws.bucket, Key=publish_plan.PAGE_KEY)
    assert head["ContentType"] == "text/html; charset=utf-8"
    tags = aws.client("s3").get_object_tagging(Bucket=aws.bucket, Key=publish_plan.SCHOOLS_KEY)["TagSet"]
    assert {"Key": "as-of", "Value": "2021-09-23"} in tags and {"Key": "lifecycle", "Value": "true"} in tags

    schools = pd.read_csv(pd.io.common.BytesIO(read(aws, publish_plan.SCHOOLS_KEY)), dtype={"CPS_School_ID": str})
    assert schools.columns[-1] == "20210923"
    addams = schools.set_index("CPS_School_ID").loc["609772"]
    assert (addams["20210923"], addams["gTotal"], addams["7Total"]) == (2, 6, 2)
    assert "400199" in set(schools["CPS_School_ID"])
    assert "610377" not in set(schools["CPS_School_ID"])

    (invalidation,) = invalidations(aws)
    paths = invalidation["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(p for p in paths if not p.startswith(f"/{open_data.OPEN_PREFIX}")) == sorted(f"/{k}" for k in KEYS)
    assert f"/{open_data.PACKAGE_KEY}" in paths  # one invalidation for the package and the dashboard's files
    (sent,) = aws.sent_notifications()
    assert sent["topic_arn"] == aws.topic_arn
    assert sent["subject"] == "CPS COVID update: 22 new cases (Sep. 23, 2021)"
    assert "New cases: 22" in sent["message"]
    assert summary["message_id"] == sent["message_id"]

    assert "update-summary" in artifacts and "new-cases-by-school" in artifacts
    report = artifacts["update-summary"].data
    assert "22 new case(s) at 13 school(s)" in report
    assert f"Bucket: `s3://{aws.bucket}`" in report
    assert "[newcases.html](https://cpscovid.com/newcases.html)" in report
    assert f"SNS message: `{sent['message_id']}`: CPS COVID update: 22 new cases (Sep. 23, 2021)" in report
    table = json.loads(artifacts["new-cases-by-school"].data)
    assert list(table[0]) == ["School", "CPS school id", "New cases"]
    assert table[-1] == {"School": "Total", "CPS school id": "", "New cases": 22} and len(table) == 13 + 1
    assert "BLAIR" in artifacts["history-validation"].data
    assert aws.heartbeats() == 1  # the watchdog outside Prefect hears of it


def test_same_feed_twice_writes_nothing_the_second_time(aws, feeds) -> None:
    first, _, _ = run(as_of=AS_OF)
    assert first.is_completed()
    before = (all_versions(aws), len(invalidations(aws)), len(aws.sent_notifications()))

    second, _, artifacts = run(as_of=AS_OF)

    assert second.is_completed()
    assert second.result()["written"] == [] and second.result()["message_id"] is None
    assert (all_versions(aws), len(invalidations(aws)), len(aws.sent_notifications())) == before
    assert "Objects written" in artifacts["update-summary"].data
    assert "SNS message: no message (nothing new)" in artifacts["update-summary"].data
    assert aws.heartbeats() == 2  # a run with nothing to do still proves the pipeline alive


def test_health_api_json_gives_the_same_tables_as_the_case_list(aws, feeds, monkeypatch) -> None:
    from local.aws_emulator import provision, seed_history

    csv_state, _, _ = run(as_of=AS_OF)
    published = {k: read(aws, k) for k in KEYS[:3]}
    aws.reset()
    aws = provision(aws.endpoint_url)
    seed_history(aws, Path(__file__).resolve().parents[2] / "data/history-2021-09-22")
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    url = feeds.route("/api.json", Route((FEEDS / "2021-09-23-health-api.json").read_bytes(), "application/json"))

    json_state, _, _ = run(as_of=AS_OF, source=url)

    assert csv_state.is_completed() and json_state.is_completed()
    assert {k: read(aws, k) for k in KEYS[:3]} == published


def test_first_run_of_a_day_without_new_cases_adds_the_zero_column_only(aws, feeds) -> None:
    state, _, _ = run(as_of=date(2021, 9, 24), source=feeds.url("/feed.csv"))
    assert state.is_completed()
    again, _, _ = run(as_of=date(2021, 9, 24))
    assert again.result()["written"] == []

    quiet = feeds.route("/same.csv", Route(read_feed_for_day(aws)))
    state, _, _ = run(as_of=date(2021, 9, 25), source=quiet)

    summary = state.result()
    assert summary["new_cases"] == 0 and summary["message_id"] is None
    assert dashboard(w["key"] for w in summary["written"]) == sorted(KEYS[:3])
    schools = pd.read_csv(pd.io.common.BytesIO(read(aws, publish_plan.SCHOOLS_KEY)))
    assert list(schools.columns[-2:]) == ["20210924", "20210925"] and schools["20210925"].eq(0).all()
    assert len(aws.sent_notifications()) == 1


def read_feed_for_day(aws) -> bytes:
    """A JSON feed restating exactly the season totals now published (nothing new)."""
    schools = pd.read_csv(pd.io.common.BytesIO(read(aws, publish_plan.SCHOOLS_KEY)), dtype={"CPS_School_ID": str})
    season = schools["gTotal"] - schools["preSY2122"]
    records = [
        {"SchoolID": int(i), "TotalCaseCount": int(n)} for i, n in zip(schools["CPS_School_ID"], season, strict=True)
    ]
    return json.dumps(records).encode()


def test_source_failing_then_recovering_is_retried(aws, feeds) -> None:
    url = feeds.route(
        "/flaky.csv",
        Route((FEEDS / "2021-09-23-cases.csv").read_bytes(), failures=[(503, {}), (429, {"Retry-After": "0"})]),
    )
    state, _, _ = run(as_of=AS_OF, source=url)
    assert state.is_completed(), state.message
    assert feeds.requests["/flaky.csv"] == 3


def test_retry_after_from_the_source_is_honoured(aws, feeds) -> None:
    url = feeds.route(
        "/busy.csv", Route((FEEDS / "2021-09-23-cases.csv").read_bytes(), failures=[(429, {"Retry-After": "1"})])
    )
    state, _, _ = run(as_of=AS_OF, source=url)
    assert state.is_completed(), state.message
    first, second = feeds.request_times["/busy.csv"]
    assert second - first >= 1.0


def test_slow_source_times_out_after_bounded_retries_and_nothing_is_written(aws, feeds, monkeypatch) -> None:
    monkeypatch.setenv("CPS_COVID_FETCH_TIMEOUT_SECONDS", "0.2")
    url = feeds.route("/slow.csv", Route(b"CPS School ID\n610212\n", delay_seconds=1.0))
    before = all_versions(aws)

    state, _, _ = run(as_of=AS_OF, source=url)

    assert state.is_failed()
    assert "no complete answer within 0.2 s" in state.message or "no complete answer" in str(
        state.result(raise_on_failure=False)
    )
    assert feeds.requests["/slow.csv"] == 4
    assert all_versions(aws) == before and invalidations(aws) == [] and aws.sent_notifications() == []
    assert aws.heartbeats() == 0  # a failed run: nothing to hear


def test_client_error_is_not_retried(aws, feeds) -> None:
    state, _, _ = run(as_of=AS_OF, source=feeds.url("/missing.csv"))
    assert state.is_failed()
    assert "HTTP 404" in str(state.result(raise_on_failure=False))
    assert feeds.requests["/missing.csv"] == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "an HTML/XML page"),
        (b'"Result Date","CPS School ID"\n"09/23/2021","6102', "malformed CSV"),
        (b'[{"SchoolID": 610212, "TotalCaseCount": 3}, {"SchoolID"', "malformed JSON"),
    ],
)
def test_malformed_source_fails_before_anything_is_written(aws, feeds, body, expected) -> None:
    url = feeds.route("/bad", Route(body))
    before = all_versions(aws)
    state, _, _ = run(as_of=AS_OF, source=url)
    assert state.is_failed()
    assert expected in str(state.result(raise_on_failure=False))
    assert all_versions(aws) == before and aws.sent_notifications() == []


def test_truncated_transfer_is_reported_and_nothing_is_written(aws, feeds) -> None:
    body = (FEEDS / "2021-09-23-cases.csv").read_bytes()
    url = feeds.route("/cut.csv", Route(body, truncate_to=len(body) // 2))
    before = all_versions(aws)
    state, _, _ = run(as_of=AS_OF, source=url)
    assert state.is_failed()
    assert "/cut.csv" in str(state.result(raise_on_failure=False))
    assert all_versions(aws) == before


def test_invalid_values_stop_the_run_with_a_validation_report(aws, feeds) -> None:
    url = feeds.route(
        "/bad.json", Route(b'[{"SchoolID": 610212, "TotalCaseCount": -4}, {"SchoolID": "12x", "TotalCaseCount": 2}]')
    )
    before = all_versions(aws)

    state, _, artifacts = run(as_of=AS_OF, source=url)

    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "row 1: cases='-4'" in message and "row 2: CPS_School_ID='12x'" in message
    assert "feed-validation" in artifacts and "-4" in artifacts["feed-validation"].data
    assert all_versions(aws) == before and aws.sent_notifications() == []
    assert aws.heartbeats() == 0  # a failed run: the watchdog stays hungry


def test_dry_run_reports_the_plan_and_writes_nothing(aws, feeds) -> None:
    before = all_versions(aws)
    state, flow_run, _ = run(as_of=AS_OF, dry_run=True)
    summary = state.result()
    assert re.fullmatch(r"update-2021-09-23 at \d\d:\d\d:\d\d \(dry run\)", flow_run.name), flow_run.name
    assert summary["written"] == [] and dashboard(summary["planned"]) == sorted(KEYS)
    assert all_versions(aws) == before and invalidations(aws) == [] and aws.sent_notifications() == []
    assert aws.heartbeats() == 0  # a dry run proves nothing about the schedule


def test_a_concurrent_writer_is_never_overwritten(aws, feeds) -> None:
    """Another writer publishes while this run merges: the conditional write refuses (412)."""
    theirs = b"School,Latitude\nSOMEONE ELSE,1\n"

    def other_writer() -> None:
        aws.client("s3").put_object(Bucket=aws.bucket, Key=publish_plan.SCHOOLS_KEY, Body=theirs)

    feeds.on_profile_request = other_writer
    state, _, _ = run(as_of=AS_OF)

    assert state.is_failed()
    assert "changed since this run read it" in str(state.result(raise_on_failure=False))
    assert read(aws, publish_plan.SCHOOLS_KEY) == theirs
    assert aws.sent_notifications() == []


def test_settings_come_from_the_prefect_variable(aws, feeds, monkeypatch) -> None:
    from prefect.variables import Variable

    values = {k[len("CPS_COVID_") :].lower(): v for k, v in aws.environment().items() if k.startswith("CPS_COVID_")}
    Variable.set("cps_covid_settings", values | {"source_url": feeds.url("/feed.csv")}, overwrite=True)
    for key in ("CPS_COVID_BUCKET", "CPS_COVID_DISTRIBUTION_ID", "CPS_COVID_TOPIC_ARN", "CPS_COVID_SOURCE_URL"):
        monkeypatch.delenv(key)
    try:
        state, _, _ = run(as_of=AS_OF)
    finally:
        Variable.unset("cps_covid_settings")
    assert state.is_completed(), state.message
    assert len(versions(aws, publish_plan.PAGE_KEY)) == 1


def test_a_run_is_on_the_async_engine_with_one_api_client_for_its_tasks(aws, feeds, monkeypatch) -> None:
    """The sync engine holds every run up to a second at its end (its heartbeat thread); in an async flow
    each synchronous task would open its own API client (about 55 ms each) but for the flow's shared one."""
    from prefect.client.orchestration import SyncPrefectClient

    from flows.update import update

    opened: list[object] = []
    original = SyncPrefectClient.__init__

    def counted(self, *args, **kwargs) -> None:
        opened.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "__init__", counted)
    state = run_update(as_of=AS_OF, dry_run=True)
    monkeypatch.undo()

    assert state.is_completed(), state.message
    assert inspect.iscoroutinefunction(update.fn)
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert len(task_runs) >= 8
    # the flow's, the settings variable read by the run's name (its day and timezone) and by the body, the engine's:
    # none per task
    assert len(opened) <= 4, f"{len(opened)} API clients opened for {len(task_runs)} task runs"
