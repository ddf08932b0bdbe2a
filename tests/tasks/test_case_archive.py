"""The case archive in the update flow: real Prefect API, moto server, loopback source."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from standins.fault_proxy import FaultProxy

from cps_covid.rules import publish_plan
from flows.update import run_update
from local.feed_server import Route

pytestmark = pytest.mark.usefixtures("prefect_api")

FEEDS = Path(__file__).resolve().parents[2] / "data/feeds"
JSON_FEED = (FEEDS / "2021-09-23-health-api.json").read_bytes()
SEPTEMBER = "historical/2021-09.json"


def read(aws, key: str) -> bytes | None:
    try:
        return aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    except aws.client("s3").exceptions.NoSuchKey:
        return None


def versions(aws, key: str) -> int:
    listed = aws.client("s3").list_object_versions(Bucket=aws.bucket, Prefix=key).get("Versions", [])
    return len([v for v in listed if v["Key"] == key])


def invalidated(aws) -> list[str]:
    client = aws.client("cloudfront")
    items = client.list_invalidations(DistributionId=aws.distribution_id)["InvalidationList"].get("Items", [])
    batches = [client.get_invalidation(DistributionId=aws.distribution_id, Id=i["Id"])["Invalidation"] for i in items]
    return sorted(p for b in batches for p in b["InvalidationBatch"]["Paths"]["Items"])


def run(**parameters):
    state = run_update(**parameters)
    assert state.is_completed(), state.message
    return state.result()


def test_each_new_day_archives_the_day_before_once(aws, feeds) -> None:
    source = feeds.route("/api.json", Route(JSON_FEED, "application/json"))

    run(as_of=date(2021, 9, 23), source=source)  # first run of 09-23: 09-22 (74 cases) goes to the archive
    first_index = read(aws, SEPTEMBER)
    page_of_22 = read(aws, "historical/2021-09-22-cases.html")
    page_of_23 = read(aws, publish_plan.PAGE_KEY)

    assert json.loads(first_index) == {  # the old archive query's body for ?date=2021-09
        "2021-09-22": {"cases": "74", "url": "https://cpscovid.com/historical/2021-09-22-cases.html"}
    }
    assert b"<title>CPS Covid Tracker - Sep. 22, 2021</title>" in page_of_22  # rendered from the 09-22 column
    assert b'href="https://cpscovid.com/school.html?name=' in page_of_22  # links that work from /historical/
    assert read(aws, "data/daily-json/2021-09-23.json") == JSON_FEED
    assert f"/{SEPTEMBER}" not in invalidated(aws)  # a new key was never cached

    run(as_of=date(2021, 9, 24), source=source)  # no new case on 09-24; 09-23's published page is kept as is
    assert read(aws, "historical/2021-09-23-cases.html") == page_of_23
    days = json.loads(read(aws, SEPTEMBER))
    assert [(d, v["cases"]) for d, v in days.items()] == [("2021-09-22", "74"), ("2021-09-23", "22")]
    assert versions(aws, SEPTEMBER) == 2 and f"/{SEPTEMBER}" in invalidated(aws)
    assert read(aws, "data/daily-json/2021-09-24.json") == JSON_FEED

    assert read(aws, "historical/2021-09-22-cases.html") == page_of_22  # never replaced
    assert versions(aws, "historical/2021-09-22-cases.html") == 1


def test_a_concurrent_index_writer_stops_the_run_before_anything_is_published(aws, feeds, monkeypatch) -> None:
    theirs = b'{"2021-09-21": {"cases": "40", "url": "https://cpscovid.com/historical/2021-09-21-cases.html"}}\n'

    def other_run_writes_the_index() -> None:
        aws.client("s3").put_object(Bucket=aws.bucket, Key=SEPTEMBER, Body=theirs)

    with FaultProxy(aws.endpoint_url) as proxy:
        proxy.on("GET", f"/{aws.bucket}/{SEPTEMBER}", other_run_writes_the_index)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        state = run_update(as_of=date(2021, 9, 23))

    assert state.is_failed()
    assert "historical/2021-09.json changed since this run read it" in str(state.result(raise_on_failure=False))
    assert read(aws, SEPTEMBER) == theirs
    assert read(aws, publish_plan.PAGE_KEY) is None and versions(aws, publish_plan.SCHOOLS_KEY) == 1
    assert aws.sent_notifications() == []
