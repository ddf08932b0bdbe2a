"""``cps-covid rebuild`` reproduces the published history from the archive; ``rollback`` restores versions."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cps_covid.rules import publish_plan
from flows.update import run_update
from local.feed_server import Route

pytestmark = pytest.mark.usefixtures("prefect_api")
ROOT = Path(__file__).resolve().parents[2]
FEED = (ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("cps-covid")), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )


def versions(aws, key: str) -> list[dict]:
    found = aws.client("s3").list_object_versions(Bucket=aws.bucket, Prefix=key)["Versions"]
    return sorted([v for v in found if v["Key"] == key], key=lambda v: v["LastModified"])


def read(aws, key: str) -> bytes:
    return aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()


@pytest.fixture
def three_updates(aws, feeds):
    seed = versions(aws, publish_plan.SCHOOLS_KEY)[0]["VersionId"]
    assert run_update(as_of=date(2021, 9, 23)).is_completed()
    after_first = datetime.now(UTC)
    first = read(aws, publish_plan.SCHOOLS_KEY)
    later = FEED + b'"09/23/2021","610212","ALBANY PARK","Student"\n'
    assert run_update(as_of=date(2021, 9, 23), source=feeds.route("/b.csv", Route(later))).is_completed()
    next_day = later + b'"09/24/2021","609772","ADDAMS","Student"\n'
    assert run_update(as_of=date(2021, 9, 24), source=feeds.route("/c.csv", Route(next_day))).is_completed()
    return seed, after_first, first


def test_rebuild_from_the_seed_reproduces_the_published_history(aws, three_updates, tmp_path) -> None:
    seed, _, _ = three_updates
    done = cli("rebuild", "--from", seed, "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replayed 3 update(s): identical to the published history" in done.stdout
    assert (tmp_path / "allCpsCovidData.csv").read_bytes() == read(aws, publish_plan.SCHOOLS_KEY)


def test_rebuild_notices_a_hand_edited_history(aws, three_updates) -> None:
    seed, _, _ = three_updates
    edited = read(aws, publish_plan.SCHOOLS_KEY).replace(b"\nADDAMS,", b"\nADDAMS ES,", 1)
    aws.client("s3").put_object(Bucket=aws.bucket, Key=publish_plan.SCHOOLS_KEY, Body=edited)
    done = cli("rebuild", "--from", seed)
    assert done.returncode == 1
    assert "DIFFERS from the published history" in done.stdout and "609772 School" in done.stdout


def test_rollback_restores_the_published_set_of_a_time(aws, three_updates) -> None:
    _, after_first, first = three_updates
    invalidations_before = len(
        aws.client("cloudfront").list_invalidations(DistributionId=aws.distribution_id)["InvalidationList"]["Items"]
    )
    done = cli("rollback", "--to", after_first.isoformat())

    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored 4 object(s)" in done.stdout
    assert read(aws, publish_plan.SCHOOLS_KEY) == first
    assert len(versions(aws, publish_plan.SCHOOLS_KEY)) == 5
    items = aws.client("cloudfront").list_invalidations(DistributionId=aws.distribution_id)["InvalidationList"]["Items"]
    assert len(items) == invalidations_before + 1
