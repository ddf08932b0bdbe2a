"""Nothing lost, nothing counted twice: reruns, several updates a day, corrections, seasons, crashes,
concurrent runs and transient faults, against a real Prefect API, moto behind a fault proxy and a loopback source."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from standins.fault_proxy import Fault, FaultProxy

from cps_covid.rules import history, merge, open_data, publish_plan
from cps_covid.rules.ledger import LEDGER_KEY, Ledger
from cps_covid.rules.schema import HistoryLayout
from flows.update import run_update
from local.feed_server import Route

pytestmark = pytest.mark.usefixtures("prefect_api")
ROOT = Path(__file__).resolve().parents[2]
FEED = (ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()
AS_OF = date(2021, 9, 23)
BUCKET_PATH = "/cpscovid-demo/"


def read(aws, key: str) -> bytes:
    return aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()


def schools(aws) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(read(aws, publish_plan.SCHOOLS_KEY)), dtype={"CPS_School_ID": str})


def ledger(aws) -> Ledger:
    return Ledger.parse(read(aws, LEDGER_KEY))


def subjects(aws) -> list[str]:
    return [n["subject"] for n in aws.sent_notifications() if n["topic_arn"] == aws.topic_arn]


def assert_published_set_is_consistent(aws) -> None:
    """The derived files agree with the per-school table, whatever happened to the run that wrote them."""
    table = schools(aws)
    from cps_covid.rules import history

    assert read(aws, publish_plan.TOTALS_KEY) == history.csv_bytes(merge.district_totals(table))
    assert read(aws, publish_plan.TRANSPOSED_KEY) == history.csv_bytes(merge.transposed(table))
    layout_days = [c for c in table.columns if c.isdigit()]
    assert (table[layout_days].sum(axis=1) == table["gTotal"]).all()


def with_extra_cases(extra: dict[str, int], base: bytes = FEED) -> bytes:
    lines = base.decode().splitlines()
    lines += [f'"09/23/2021","{sid}","X","Student"' for sid, n in extra.items() for _ in range(n)]
    return ("\n".join(lines) + "\n").encode()


def without_cases(school_id: str, count: int, base: bytes = FEED) -> bytes:
    out, removed = [], 0
    for line in base.decode().splitlines():
        if removed < count and f'"{school_id}"' in line:
            removed += 1
            continue
        out.append(line)
    return ("\n".join(out) + "\n").encode()


@pytest.fixture
def proxy(aws, monkeypatch):
    with FaultProxy(aws.endpoint_url) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        yield running


# 1. Idempotent reruns


def test_rerunning_a_past_day_with_its_feed_changes_no_byte(aws, feeds) -> None:
    assert run_update(as_of=AS_OF).is_completed()
    url = feeds.route("/24.csv", Route(with_extra_cases({"610212": 2}, FEED.replace(b"09/23/2021", b"09/24/2021"))))
    assert run_update(as_of=date(2021, 9, 24), source=url).is_completed()
    before = {k: read(aws, k) for k in (publish_plan.SCHOOLS_KEY, publish_plan.TOTALS_KEY, publish_plan.PAGE_KEY)}

    again = run_update(as_of=AS_OF)

    summary = again.result()
    assert summary["written"] == [] and any("already applied" in n for n in summary["notes"])
    assert {k: read(aws, k) for k in before} == before
    assert len(subjects(aws)) == 2


# 2. Several updates in one day


def test_second_update_of_the_day_says_what_is_new_and_the_day_totals(aws, feeds) -> None:
    assert run_update(as_of=AS_OF).is_completed()
    later = feeds.route("/later.csv", Route(with_extra_cases({"609772": 1, "610499": 2})))

    state = run_update(as_of=AS_OF, source=later)

    summary = state.result()
    assert summary["new_cases"] == 3 and summary["schools_affected"] == 2
    first, second = [n["message"] for n in aws.sent_notifications() if n["topic_arn"] == aws.topic_arn]
    assert "New cases: 22" in first
    assert "Update: " in second and "New cases: 3\nSchools affected: 2" in second
    assert "Cumulative cases reported Sep. 23, 2021\nNew cases: 25\nSchools affected: 14" in second
    page = read(aws, publish_plan.PAGE_KEY).decode()
    assert '<th class="arrived">Arrived</th>' in page
    addams = next(line for line in page.splitlines() if ">ADDAMS</a>" in line)
    assert '<td class="cases">3</td>' in addams and addams.count("(+") == 2


# 3. Corrections, new seasons, outliers


def test_a_lower_season_total_is_a_flagged_negative_correction(aws, feeds) -> None:
    assert run_update(as_of=AS_OF).is_completed()
    url = feeds.route("/fewer.csv", Route(without_cases("609772", 1)))

    state = run_update(as_of=AS_OF, source=url)

    summary = state.result()
    corrections = [e for e in summary["events"] if e["tag"] == "correction"]
    assert [(e["school_id"], e["school"], e["cases"], e["day"]) for e in corrections] == [
        ("609772", "ADDAMS", -1, "20210923")
    ]
    assert "Corrections (cases removed by the district): ADDAMS (-1)" in summary["message"]
    assert schools(aws).set_index("CPS_School_ID").loc["609772", "20210923"] == 1
    assert_published_set_is_consistent(aws)


def test_a_season_reset_stops_until_the_operator_names_the_new_season(aws, feeds) -> None:
    reset = feeds.route("/reset.csv", Route(b'"CPS School ID"\n"609772"\n"610212"\n'))
    before = read(aws, publish_plan.SCHOOLS_KEY)

    stopped = run_update(as_of=date(2021, 10, 5), source=reset)  # far from any season start in the calendar

    assert stopped.is_failed()
    assert "rerun the update with new_season=NAME" in str(stopped.result(raise_on_failure=False))
    assert read(aws, publish_plan.SCHOOLS_KEY) == before

    state = run_update(as_of=date(2021, 10, 5), source=reset, new_season="SY2122")

    assert state.is_completed(), state.message
    table = schools(aws).set_index("CPS_School_ID")
    assert list(table.columns[6:9]) == ["gTotal", "preSY2122", "SY2122"]
    assert table.loc["609772", "SY2122"] == 4 - 3 and table.loc["609772", "20211005"] == 1
    assert (table["gTotal"] - table["preSY2122"] - table["SY2122"]).sum() == 2
    assert_published_set_is_consistent(aws)


def test_an_outlier_is_flagged_not_dropped(aws, feeds) -> None:
    url = feeds.route("/spike.csv", Route(with_extra_cases({"610212": 30})))
    summary = run_update(as_of=AS_OF, source=url).result()
    outliers = [e for e in summary["events"] if e["tag"] == "outlier"]
    assert [(e["school"], e["cases"]) for e in outliers] == [("ALBANY PARK", 31)]
    assert outliers[0]["detail"].startswith("31 cases on 20210923, robust z-score")
    assert schools(aws).set_index("CPS_School_ID").loc["610212", "20210923"] == 31


# 4. Raw archive and ledger


def test_every_payload_is_archived_unchanged_with_its_source_and_the_ledger_says_what_was_applied(aws, feeds) -> None:
    summary = run_update(as_of=AS_OF).result()

    raw = aws.client("s3").get_object(Bucket=aws.bucket, Key=summary["raw_key"])
    assert raw["Body"].read() == FEED
    assert raw["Metadata"]["source-url"] == feeds.url("/feed.csv") and "fetched-at" in raw["Metadata"]
    assert summary["raw_key"].startswith("raw/") and summary["source_sha256"] in summary["raw_key"]
    (entry,) = ledger(aws).entries
    assert (entry.raw_key, entry.step, entry.as_of) == (summary["raw_key"], "kept", "2021-09-23")
    assert entry.versions[publish_plan.SCHOOLS_KEY] == next(
        w["version_id"] for w in summary["written"] if w["key"] == publish_plan.SCHOOLS_KEY
    )


# 5. Crash safety: a real flow process killed at each write boundary, then the next run


def run_process(aws, env_extra: dict[str, str]) -> subprocess.Popen:
    env = dict(os.environ) | env_extra
    cli = Path(sys.executable).with_name("cps-covid")
    return subprocess.Popen(
        [str(cli), "run", "--as-of", "2021-09-23"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


@pytest.mark.parametrize(
    ("boundary", "request_pattern", "body", "skip"),
    [
        ("after the raw archive", rf"PUT {BUCKET_PATH}state/ledger\.json", None, 0),
        ("between two object writes", rf"PUT {BUCKET_PATH}data/CPStotals\.csv", None, 0),
        ("before the open dataset's descriptor", rf"PUT {BUCKET_PATH}data/open/datapackage\.json", None, 0),
        ("after the writes, before the invalidation", r"POST /2020-05-31/distribution/.*/invalidation", None, 0),
        ("before the notification", rf"PUT {BUCKET_PATH}state/ledger\.json", None, 3),
    ],
)
def test_a_run_killed_at_a_boundary_is_finished_by_the_next_run(
    aws, feeds, proxy, monkeypatch, boundary, request_pattern, body, skip
) -> None:
    holder: dict[str, subprocess.Popen] = {}
    proxy.add(
        Fault(
            request_pattern,
            action="kill",
            body=body,
            skip=skip,
            on_kill=lambda: os.kill(holder["process"].pid, signal.SIGKILL),
        )
    )
    holder["process"] = run_process(aws, {"PREFECT_API_URL": os.environ["PREFECT_API_URL"]})
    assert holder["process"].wait(timeout=300) == -signal.SIGKILL, boundary

    monkeypatch.setenv("CPS_COVID_LEASE_SECONDS", "0")
    state = run_update(as_of=AS_OF)

    assert state.is_completed(), state.message
    assert_published_set_is_consistent(aws)
    table = schools(aws).set_index("CPS_School_ID")
    assert table["20210923"].sum() == 22 and table.loc["609772", "gTotal"] == 6
    assert subjects(aws) == ["CPS COVID update: 22 new cases (Sep. 23, 2021)"]
    assert all(e.finished and e.step == "kept" for e in ledger(aws).entries)
    assert b"ADDAMS" in read(aws, publish_plan.PAGE_KEY)
    # the open dataset finished with the rest: its descriptor names only files that are there, and they match
    descriptor = json.loads(read(aws, open_data.PACKAGE_KEY))
    named = {r["path"] for r in descriptor["resources"]} | {r["x_parquet"]["path"] for r in descriptor["resources"]}
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=open_data.OPEN_PREFIX)["Contents"]
    assert named <= {item["Key"].removeprefix(open_data.OPEN_PREFIX) for item in listed}
    published = read(aws, publish_plan.SCHOOLS_KEY)
    tables = open_data.read_tables(
        {
            name: read(aws, f"{open_data.OPEN_PREFIX}{name}.csv")
            for name in ("cases", "schools", "carry_overs", "district_days")
        }
    )
    assert history.csv_bytes(open_data.wide_table(tables)) == published


def test_a_run_killed_while_notifying_never_notifies_twice(aws, feeds, proxy, monkeypatch) -> None:
    holder: dict[str, subprocess.Popen] = {}
    proxy.add(
        Fault(
            r"^POST /$",
            action="kill",
            body="Action=Publish",
            on_kill=lambda: os.kill(holder["process"].pid, signal.SIGKILL),
        )
    )
    holder["process"] = run_process(aws, {})
    assert holder["process"].wait(timeout=300) == -signal.SIGKILL

    monkeypatch.setenv("CPS_COVID_LEASE_SECONDS", "0")
    summary = run_update(as_of=AS_OF).result()

    assert subjects(aws) == []
    assert any("may not have reached subscribers" in w for w in summary["warnings"])
    assert_published_set_is_consistent(aws)


RESET_FEED = b'"CPS School ID"\n"609772"\n"610212"\n'
"""The district's totals reset on 2021-09-23: with a season starting that day in the calendar, the update closes
SY2122 by itself and tells the operators; two new cases are mailed and posted."""


@pytest.mark.parametrize(
    ("boundary", "request_pattern", "body"),
    [
        (
            "after the publication, before the season notice",
            rf"PUT {BUCKET_PATH}state/ledger\.json",
            '"step": "telling"',
        ),
        ("before the raw feed copy", rf"PUT {BUCKET_PATH}data/daily-json/2021-09-23\.csv", None),
        ("before the social posts", rf"PUT {BUCKET_PATH}state/social/", None),
    ],
)
def test_a_run_killed_before_a_follow_up_leaves_it_to_the_next_run_which_does_it_once(
    aws, feeds, channels, proxy, monkeypatch, boundary, request_pattern, body
) -> None:
    x, graph = channels
    monkeypatch.setenv("CPS_COVID_SOURCE_URL", feeds.route("/reset.csv", Route(RESET_FEED)))
    monkeypatch.setenv("CPS_COVID_SEASONS", "SY2122:2021-08-30,SY2122B:2021-09-23")
    holder: dict[str, subprocess.Popen] = {}
    kill = Fault(
        request_pattern, action="kill", body=body, on_kill=lambda: os.kill(holder["process"].pid, signal.SIGKILL)
    )
    proxy.add(kill)
    holder["process"] = run_process(aws, {})
    assert holder["process"].wait(timeout=300) == -signal.SIGKILL, boundary
    assert kill.applied == 1 and subjects(aws) == ["CPS COVID update: 2 new cases (Sep. 23, 2021)"]

    monkeypatch.setenv("CPS_COVID_LEASE_SECONDS", "0")
    state = run_update(as_of=AS_OF)

    assert state.is_completed(), state.message
    (entry,) = ledger(aws).entries
    assert entry.step == "posted" and entry.finished
    notices = [n["subject"] for n in aws.sent_notifications() if n["topic_arn"] == aws.alarm_topic_arn]
    assert notices == ["cps-covid: the season was closed into SY2122 (Sep. 23, 2021), no action needed"]
    kept = aws.client("s3").list_object_versions(Bucket=aws.bucket, Prefix="data/daily-json/")["Versions"]
    assert [v["Key"] for v in kept] == ["data/daily-json/2021-09-23.csv"]
    assert read(aws, "data/daily-json/2021-09-23.csv") == RESET_FEED
    assert (len(x.posts), len(graph.posts)) == (1, 1)
    assert subjects(aws) == ["CPS COVID update: 2 new cases (Sep. 23, 2021)"]  # the mail was the first run's
    assert HistoryLayout.of(schools(aws).columns).carry_overs == ["preSY2122", "SY2122"]


# 6. Concurrency


def test_a_second_run_while_one_holds_the_update_ends_cancelled_and_writes_nothing(aws, feeds, proxy) -> None:
    holder: dict[str, subprocess.Popen] = {}
    proxy.add(
        Fault(
            rf"PUT {BUCKET_PATH}data/CPStotals\.csv",
            action="kill",
            on_kill=lambda: os.kill(holder["process"].pid, signal.SIGKILL),
        )
    )
    holder["process"] = run_process(aws, {})
    holder["process"].wait(timeout=300)
    versions_before = aws.client("s3").list_object_versions(Bucket=aws.bucket)["Versions"]

    state = run_update(as_of=AS_OF)

    assert state.is_cancelled()
    assert "is still being published" in state.message
    assert len(aws.client("s3").list_object_versions(Bucket=aws.bucket)["Versions"]) == len(versions_before) + 1
    assert subjects(aws) == []


def test_two_runs_started_together_apply_the_feed_once(aws, feeds) -> None:
    import threading

    gate = threading.Event()
    url = feeds.route("/together.csv", Route(FEED, gate=gate))
    env = {"CPS_COVID_SOURCE_URL": url}
    first, second = run_process(aws, env), run_process(aws, env)
    from cps_covid.waiting import wait_for

    wait_for(lambda: feeds.requests["/together.csv"] >= 2, what="both runs fetching", timeout=180)
    gate.set()
    outputs = [p.communicate(timeout=300)[0].decode() for p in (first, second)]
    codes = sorted([first.returncode, second.returncode])

    assert codes in ([0, 0], [0, 3]), outputs
    assert subjects(aws) == ["CPS COVID update: 22 new cases (Sep. 23, 2021)"]
    assert len(ledger(aws).entries) == 1
    assert schools(aws)["20210923"].sum() == 22
    loser = outputs[0] if first.returncode == 3 or "nothing to do" in outputs[0] else outputs[1]
    assert "claimed this update first" in loser or "already applied" in loser or "still being published" in loser


# 7. Transient faults


def test_s3_slowdown_sns_throttling_and_cloudfront_errors_are_retried(aws, feeds, proxy) -> None:
    proxy.add(Fault(rf"PUT {BUCKET_PATH}data/allCpsCovidData\.csv", status=503, code="SlowDown", times=2))
    proxy.add(Fault(r"POST /2020-05-31/distribution/.*/invalidation", status=503, code="ServiceUnavailable", times=2))
    proxy.add(Fault(r"^POST /$", body="Action=Publish", status=400, code="Throttling", times=2))

    state = run_update(as_of=AS_OF)

    assert state.is_completed(), state.message
    assert [a for _, a in proxy.log].count("fail") == 6
    assert subjects(aws) == ["CPS COVID update: 22 new cases (Sep. 23, 2021)"]
    assert_published_set_is_consistent(aws)


def test_a_permanent_s3_failure_names_the_system_and_the_next_run_finishes(aws, feeds, proxy, monkeypatch) -> None:
    proxy.add(Fault(rf"PUT {BUCKET_PATH}data/CPStotals\.csv", status=500, code="InternalError", times=0))

    failed = run_update(as_of=AS_OF)

    assert failed.is_failed()
    message = str(failed.result(raise_on_failure=False))
    assert "S3 PutObject s3://cpscovid-demo/data/CPStotals.csv failed" in message and "attempts" in message
    assert subjects(aws) == []
    proxy.clear()
    monkeypatch.setenv("CPS_COVID_LEASE_SECONDS", "0")

    assert run_update(as_of=AS_OF).is_completed()
    assert_published_set_is_consistent(aws)
    assert subjects(aws) == ["CPS COVID update: 22 new cases (Sep. 23, 2021)"]
