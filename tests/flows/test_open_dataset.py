"""The open dataset as the update flow publishes it: real Prefect API, moto server, loopback feed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from prefect.client.orchestration import get_client

from cps_covid.rules import history, open_data, publish_plan
from flows.update import run_update

pytestmark = pytest.mark.usefixtures("prefect_api")

AS_OF = date(2021, 9, 23)


def read(aws, key: str) -> bytes:
    return aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()


def open_keys(aws) -> list[str]:
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=open_data.OPEN_PREFIX).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def test_an_update_publishes_the_package_beside_the_dashboards_files(aws, feeds, tmp_path) -> None:
    state = run_update(as_of=AS_OF)
    assert state.is_completed(), state.message
    summary = state.result()

    written = [w["key"] for w in summary["written"]]
    opened = [k for k in written if k.startswith(open_data.OPEN_PREFIX)]
    assert written[-1] == open_data.PACKAGE_KEY  # the descriptor last: it never names a file not yet written
    assert sorted(opened) == open_keys(aws)
    assert {"data/open/cases.csv", "data/open/cases.parquet", "data/open/errata.csv", open_data.README_KEY} <= set(
        opened
    )
    head = aws.client("s3").head_object(Bucket=aws.bucket, Key=open_data.PACKAGE_KEY)
    assert head["ContentType"] == open_data.JSON_TYPE and head["CacheControl"]

    # the dashboard's table rebuilt from the tidy tables, byte for byte
    tables = open_data.read_tables(
        {
            name: read(aws, f"{open_data.OPEN_PREFIX}{name}.csv")
            for name in ("cases", "schools", "carry_overs", "district_days")
        }
    )
    published = read(aws, publish_plan.SCHOOLS_KEY)
    schools = history.read_table(published, "allCpsCovidData.csv")
    assert history.csv_bytes(open_data.wide_table(tables)) == published
    assert int(tables["district_days"].iloc[-1]["running_total"]) == int(schools["gTotal"].sum())

    # provenance names this update; errata hold BLAIR's drift repair, which this first merge made
    provenance = pd.read_csv(io.BytesIO(read(aws, "data/open/provenance.csv")), dtype=str)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
    assert provenance[["update_day", "flow_run"]].values.tolist() == [["2021-09-23", str(flow_run.id)]]
    assert provenance.iloc[0]["sha256"] == summary["source_sha256"]
    errata = pd.read_csv(io.BytesIO(read(aws, "data/open/errata.csv")), dtype=str)
    assert errata[["kind", "school_id", "field", "old", "new"]].values.tolist() == [
        ["drift-repair", "610087", "gTotal", "1", "2"]
    ]
    descriptor = json.loads(read(aws, open_data.PACKAGE_KEY))
    assert descriptor["last_updated"] == provenance.iloc[0]["claimed_at"]

    # Frictionless validates the package as a reader downloads it
    for key in open_keys(aws):
        (tmp_path / key.removeprefix(open_data.OPEN_PREFIX)).write_bytes(read(aws, key))
    checked = subprocess.run(
        [str(Path(sys.executable).with_name("frictionless")), "validate", "datapackage.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout[-3000:]


def test_a_run_with_nothing_new_leaves_the_package_alone(aws, feeds) -> None:
    assert run_update(as_of=AS_OF).is_completed()
    before = {k: read(aws, k) for k in open_keys(aws)}

    again = run_update(as_of=AS_OF)

    assert again.is_completed() and again.result()["written"] == []
    assert {k: read(aws, k) for k in open_keys(aws)} == before
