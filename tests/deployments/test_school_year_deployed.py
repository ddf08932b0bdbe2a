"""A synthetic school year through the deployed flow on a real process worker: seasons, empty days, a gap.

From SY2122 in June 2022 to SY2223 in August: cases, a correction, the summer
session's empty first day, summer cases, a five-week gap the operator confirms,
the new school year's empty first days and its first case. Run twice on two
buckets: with the district's season calendar (no run fails, no alarm fires, the
operators are told of each season close), and without one (exactly the two reset
runs fail, each alarm arrives, and the manual close works). The reset days run
deployed on a real process worker, whose failing runs alarm; the other runs go
through the Prefect API in this process (a deployed run costs a fresh process).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from prefect.deployments import run_deployment

from cps_covid.operations import deploy as deploying
from cps_covid.rules import history, merge, publish_plan
from cps_covid.rules.schema import GTOTAL, SCHOOL_ID, HistoryLayout, day_column
from cps_covid.waiting import wait_for
from local.aws_emulator import Emulated, provision
from local.feed_server import FeedServer, Route

ROOT = Path(__file__).resolve().parents[2]
SCHOOLS = {  # id: (name, latitude, longitude, preSY2122, SY2122 so far on 2022-06-08)
    "999999": ("ADMINISTRATIVE", 41.88235794, -87.62813012, 17, 0),
    "609772": ("ADDAMS", 41.6987388, -87.53297604, 3, 40),
    "610212": ("ALBANY PARK", 41.97150444, -87.71060879, 2, 30),
}
YEAR = [  # (as_of, season totals the district reports that day, confirmed gap)
    (date(2022, 6, 9), {"609772": 42, "610212": 31}, False),
    (date(2022, 6, 10), {"609772": 41, "610212": 31}, False),  # ADDAMS: one duplicate removed
    (date(2022, 6, 14), {}, False),  # Summer_22's first day: nothing yet, the district reset its totals
    (date(2022, 6, 15), {"609772": 2}, False),
    (date(2022, 7, 20), {"609772": 3, "610212": 1}, True),  # 35 days after the last run: confirmed
    (date(2022, 8, 18), {}, False),  # SY2223's first day
    (date(2022, 8, 19), {}, False),  # still nothing: a day of zeros
    (date(2022, 8, 22), {"609772": 1}, False),
]
RESETS = {date(2022, 6, 14): "SY2122", date(2022, 8, 18): "Summer_22"}


def seeded_history() -> pd.DataFrame:
    days = [day_column(date(2022, 6, 1) + timedelta(days=n)) for n in range(8)]
    rows = []
    for sid, (name, lat, lon, before, season) in SCHOOLS.items():
        counts = [before, season // 2, season - season // 2, *[0] * 5]  # gTotal: the sum of the day columns
        rows.append(
            {"School": name, "Latitude": lat, "Longitude": lon, SCHOOL_ID: sid, "7Total": 0, "14Total": 0}
            | {"21Total": 0, GTOTAL: before + season, "preSY2122": before}
            | dict(zip(days, counts, strict=True))
        )
    return merge.recompute_windows(pd.DataFrame(rows).astype({SCHOOL_ID: "str"}))


def feed(totals: dict[str, int]) -> bytes:
    records = [{"SchoolID": int(s), "CaseDate": "06/01/2022", "TotalCaseCount": n} for s, n in totals.items()]
    return json.dumps(records).encode()


@pytest.fixture(scope="module")
def buckets(moto_endpoint: str) -> dict[str, Emulated]:
    Emulated(moto_endpoint, "", "", "").reset()
    found = {"calendar": provision(moto_endpoint, "year-calendar"), "manual": provision(moto_endpoint, "year-manual")}
    schools = seeded_history()
    for emulated in found.values():
        s3 = emulated.client("s3")
        s3.put_object(Bucket=emulated.bucket, Key=publish_plan.SCHOOLS_KEY, Body=history.csv_bytes(schools))
        s3.put_object(
            Bucket=emulated.bucket, Key=publish_plan.TOTALS_KEY, Body=history.csv_bytes(merge.district_totals(schools))
        )
    return found


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        for as_of, totals, _ in YEAR:
            server.route(f"/{as_of}.json", Route(feed(totals), "application/json"))
        yield server


@pytest.fixture(scope="module")
def worker(
    buckets, prefect_api: str, tmp_path_factory: pytest.TempPathFactory, start_worker
) -> Iterator[dict[str, str]]:
    """The deployments on the process pool and a worker; the alarms of both years go to one operators' topic."""
    operators = buckets["calendar"].alarm_topic_arn
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith(("CPS_COVID_", "AWS_"))}
        | buckets["calendar"].environment()
        | {"CPS_COVID_SOURCE_URL": "http://127.0.0.1:9/unused", "PREFECT_API_URL": prefect_api}
    )
    deploying.deploy(target="process", env=env, paused=["cps-covid-watch"])  # no feed to watch here
    worker_env = {k: v for k, v in env.items() if not k.startswith("CPS_COVID_")}
    with start_worker(worker_env | {"CPS_COVID_ALARM_TOPIC_ARN": operators}, tmp_path_factory.mktemp("year") / "w.log"):
        yield {"operators": operators}


def run_day(emulated: Emulated, feeds: FeedServer, as_of: date, *, seasons: str | None, **parameters):
    """One on-demand run of the deployed update for ``as_of`` on ``emulated``'s bucket."""
    env = emulated.environment() | {"CPS_COVID_MAX_GAP_DAYS": "30", "CPS_COVID_FETCH_BACKOFF_SECONDS": "0.05"}
    env.pop("CPS_COVID_ALARM_TOPIC_ARN")  # the worker's: the operators' topic
    if seasons is not None:
        env["CPS_COVID_SEASONS"] = seasons
    return run_deployment(
        "cps-covid-update/cps-covid-rerun",
        parameters={"as_of": as_of.isoformat(), "source": feeds.url(f"/{as_of}.json"), **parameters},
        job_variables={"env": env},
        timeout=300,
        poll_interval=0.5,
    )


def operator_mail(emulated: Emulated, topic: str) -> list[dict]:
    """What the operators got about this year's runs (all reruns): the deployed schedules may run for today
    meanwhile, and a failure of theirs alarms at once."""
    scheduled = ("cps-covid-update ", "cps-vaccination-update ")
    return [
        n for n in emulated.sent_notifications() if n["topic_arn"] == topic and not n["subject"].startswith(scheduled)
    ]


def published(emulated: Emulated) -> pd.DataFrame:
    body = emulated.client("s3").get_object(Bucket=emulated.bucket, Key=publish_plan.SCHOOLS_KEY)["Body"].read()
    return history.read_table(body, "published")


def check_the_year(schools: pd.DataFrame) -> None:
    """Carry-overs and totals as computed by hand from the feeds above."""
    by_id = schools.set_index(SCHOOL_ID)
    layout = HistoryLayout.of(schools.columns)
    assert layout.carry_overs == ["preSY2122", "SY2122", "Summer_22"]
    assert by_id.loc[["999999", "609772", "610212"], "SY2122"].tolist() == [0, 41, 31]  # as of 2022-06-10
    assert by_id.loc[["999999", "609772", "610212"], "Summer_22"].tolist() == [0, 3, 1]  # as of 2022-07-20
    assert by_id.loc[["999999", "609772", "610212"], GTOTAL].tolist() == [17, 3 + 41 + 3 + 1, 2 + 31 + 1]
    assert layout.days[0] == "20220601" and layout.days[-1] == "20220822"
    assert len(layout.days) == (date(2022, 8, 22) - date(2022, 6, 1)).days + 1  # one column per calendar day
    assert by_id.loc["609772", ["20220609", "20220610", "20220614", "20220615", "20220720", "20220822"]].tolist() == [
        2,
        -1,
        0,
        2,
        1,
        1,
    ]
    assert schools.columns.tolist()[8:11] == ["preSY2122", "SY2122", "Summer_22"]  # the front end's layout


def test_with_the_season_calendar_the_year_needs_no_hand_edit(prefect_api, buckets, feeds, monkeypatch) -> None:
    """In this process, through the Prefect API: the deployed path is the next test's, whose runs fail and alarm."""
    from flows.update import run_update

    emulated = buckets["calendar"]
    for name, value in emulated.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CPS_COVID_MAX_GAP_DAYS", "30")
    monkeypatch.setenv("CPS_COVID_SOURCE_URL", "http://127.0.0.1:9/unused")  # each run names its day's feed
    monkeypatch.delenv("CPS_COVID_SEASONS", raising=False)  # the district's calendar
    for as_of, _, gap in YEAR:
        state = run_update(as_of=as_of, source=feeds.url(f"/{as_of}.json"), fill_gap=gap)
        assert state.is_completed(), (as_of, state.message)

    check_the_year(published(emulated))
    mail = operator_mail(emulated, emulated.alarm_topic_arn)
    assert [m["subject"] for m in mail] == [
        "cps-covid: the season was closed into SY2122 (Jun. 14, 2022), no action needed",
        "cps-covid: the season was closed into Summer_22 (Aug. 18, 2022), no action needed",
    ]  # told, not asked: no failure alarm
    assert "by the season calendar: Summer_22 starts 2022-06-14" in mail[0]["message"]
    assert "Carry-over columns now: preSY2122, SY2122, Summer_22." in mail[1]["message"]


def test_without_a_calendar_exactly_the_resets_stop_and_the_manual_close_works(
    worker, buckets, feeds, monkeypatch
) -> None:
    """The reset days run deployed (their runs fail and alarm through the worker); the days between them and the
    operator's manual closes run in this process, as in the calendar year above."""
    from flows.update import run_update

    emulated = buckets["manual"]
    for name, value in emulated.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CPS_COVID_MAX_GAP_DAYS", "30")
    monkeypatch.setenv("CPS_COVID_SOURCE_URL", "http://127.0.0.1:9/unused")
    monkeypatch.setenv("CPS_COVID_SEASONS", "")  # no calendar
    stopped = []
    for as_of, _, gap in YEAR:
        source = feeds.url(f"/{as_of}.json")
        if as_of in RESETS:
            flow_run = run_day(emulated, feeds, as_of, seasons="", fill_gap=gap)
            assert flow_run.state.is_failed(), as_of
            assert "rerun the update with new_season=NAME" in flow_run.state.message
            stopped.append(flow_run.name)
            state = run_update(as_of=as_of, source=source, new_season=RESETS[as_of])
        else:
            state = run_update(as_of=as_of, source=source, fill_gap=gap)
        assert state.is_completed(), (as_of, state.message)
    assert [name.split(" at ")[0] for name in stopped] == ["update-2022-06-14", "update-2022-08-18"]

    check_the_year(published(emulated))

    def alarms() -> list[dict]:
        found = [m for m in operator_mail(emulated, worker["operators"]) if " Failed" in m["subject"]]
        return found if len(found) >= 2 else []

    subjects = [m["subject"] for m in wait_for(alarms, what="both failure alarms", timeout=240)]
    why = "Failed: the feed lists no case at all"  # why, not only that it failed
    # each stopped run sends its alarm and writes the once-only marker to the bucket it ran on (year-manual);
    # the automation's backstop reads the deployed settings' bucket (year-calendar), so here it may send again.
    # With one bucket, as deployed, it does not (tests/deployments/test_deploy.py, tests/local/test_stack.py)
    assert len(set(subjects)) == 2
    for name in stopped:  # one alarm per failed run, saying which run and why
        assert [s for s in subjects if s.startswith(f"cps-covid-rerun {name} {why}")], (name, subjects)
