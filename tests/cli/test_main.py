"""The ``cps-covid`` console script as a user runs it: separate processes, real services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cps_covid.rules import history, open_data
from cps_covid.rules.validation import EXPECTATIONS_DIR

OPEN_TABLES = ("cases", "schools", "carry_overs", "district_days", "errata", "provenance")
OPEN_FILES = [f"{t}.{ext}" for t in OPEN_TABLES for ext in ("csv", "parquet")] + ["README.md", "datapackage.json"]

pytestmark = pytest.mark.slow  # a browser or the CLI in a subprocess

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("cps-covid")


def cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ), cwd=ROOT
    )


def test_run_applies_a_feed_through_the_prefect_server(prefect_api, aws, feeds) -> None:
    env = dict(os.environ) | {"PREFECT_API_URL": prefect_api}
    done = cli("run", "--as-of", "2021-09-23", "--source", feeds.url("/feed.csv"), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "22 new case(s) at 13 school(s) for 2021-09-23" in done.stdout
    assert "wrote newcases.html (version " in done.stdout
    assert len(aws.sent_notifications()) == 1


def test_run_dry_run_publishes_nothing(prefect_api, aws, feeds) -> None:
    env = dict(os.environ) | {"PREFECT_API_URL": prefect_api}
    done = cli("run", "--as-of", "2021-09-23", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "would write newcases.html" in done.stdout
    assert aws.sent_notifications() == []


def test_run_without_settings_names_what_is_missing(prefect_api) -> None:
    from prefect.variables import Variable

    Variable.unset("cps_covid_settings")  # an earlier module's deploy may have left its settings on the server
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPS_COVID_")} | {"PREFECT_API_URL": prefect_api}
    done = cli("run", "--as-of", "2021-09-23", env=env)
    assert done.returncode != 0
    assert "CPS_COVID_BUCKET" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("argument", ["--as-of=2021-13-01", "--as-of=yesterday"])
def test_bad_dates_are_refused(argument: str) -> None:
    done = cli("merge", "--history", "x", "--fresh", "y", "--out", "z", argument)
    assert done.returncode == 2 and "is not a date like 2021-09-23" in done.stderr


def test_demo_runs_the_flow_on_embedded_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "CPS_COVID_"))}
    out = tmp_path / "site"
    done = cli("demo", "--out", str(out), "--prefect-home", str(tmp_path / "prefect"), env=env, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "22 new case(s) at 13 school(s) for 2021-09-23" in done.stdout
    assert "CloudFront invalidation " in done.stdout
    assert "Subject: CPS COVID update: 22 new cases (Sep. 23, 2021)" in done.stdout
    published = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    site = [p for p in published if not p.startswith(("raw/", "state/", "runs/"))]  # the site, not the run's records
    docs = sorted(p.rsplit("/", 1)[1] for p in published if p.startswith("runs/"))  # one Data Docs page a validation
    assert docs == [f"{suite.stem}.html" for suite in sorted(EXPECTATIONS_DIR.glob("*.json"))]  # both flows' suites
    assert site == [
        "data/CPStotals.csv",
        "data/allCpsCovidData.csv",
        "data/daily-json/2021-09-23.csv",
        "data/newFormatTest.csv",
        *sorted(f"data/open/{name}" for name in OPEN_FILES),
        "historical/2021-09-22-cases.html",
        "historical/2021-09.json",
        "newcases.html",
    ]
    assert "vaccination figures of 517 school(s) for 2021-09-23: 517 school(s) changed" in done.stdout
    header = (out / "data/allCpsCovidData.csv").read_text().splitlines()[0]
    assert header.startswith("School,Latitude,Longitude,CPS_School_ID,Student_Count,Vax_Complete,Vax_First_Dose,")
    assert header.endswith(",20210923")
    # the open dataset beside them, after both flows: the published table rebuilt from its tidy tables
    published = (out / "data/allCpsCovidData.csv").read_bytes()
    tables = open_data.read_tables(
        {
            name: (out / f"data/open/{name}.csv").read_bytes()
            for name in ("cases", "schools", "carry_overs", "district_days")
        }
    )
    schools = history.read_table(published, "allCpsCovidData.csv")
    assert history.csv_bytes(open_data.wide_table(tables)) == published
    enrolled = tables["schools"]["student_count"].sum()
    assert enrolled == schools["Student_Count"].sum() > 0  # the vaccination update's figures too


def test_serve_runs_the_subscription_service_until_stopped(moto_endpoint, tmp_path: Path) -> None:
    import httpx

    from cps_covid.waiting import wait_for
    from local.aws_emulator import Emulated
    from local.prefect_server import free_port

    emulated = Emulated(moto_endpoint, "", "", "")
    topic = emulated.client("sns").create_topic(Name="cli-serve-subscribers")["TopicArn"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "CPS_COVID_"))}
    env |= emulated.environment() | {"CPS_COVID_TOPIC_ARN": topic, "CPS_COVID_SITE_ORIGIN": "https://cpscovid.test"}
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(CLI), "serve", "--port", str(port)], env=env, stderr=out, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                return False

        wait_for(healthy, what="cps-covid serve to answer", timeout=60)
        answer = httpx.post(f"{url}/subscribe", json={"email": "cli.reader@example.org"}, timeout=30)
        assert answer.status_code == 202
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (ECS stops tasks this way)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Finished server process" in log.read_text()
    subscribed = emulated.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Endpoint"] for s in subscribed] == ["cli.reader@example.org"]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (accepted,) = [e for e in lines if e.get("outcome") == "accepted"]
    assert (accepted["event"], accepted["address"], accepted["status"]) == ("subscribe", "c***@example.org", 202)
    assert "cli.reader" not in log.read_text()


def test_serve_without_a_topic_names_the_setting() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CPS_COVID_"))}
    done = cli("serve", "--port", "0", env=env, timeout=60)
    assert done.returncode == 2
    assert "CPS_COVID_TOPIC_ARN" in done.stderr and "Traceback" not in done.stderr


def test_vaccination_without_a_source_names_the_setting(prefect_api, aws) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CPS_COVID_VACCINATION_SOURCE_URL"} | {
        "PREFECT_API_URL": prefect_api
    }
    done = cli("vaccination", env=env)
    assert done.returncode == 2
    assert "CPS_COVID_VACCINATION_SOURCE_URL" in done.stderr and "Traceback" not in done.stderr
