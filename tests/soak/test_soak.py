"""Soak: a month of synthetic feeds, 500 consecutive runs, random faults on 10% of AWS and source calls.

Run by ``make soak`` (marked ``soak``, not part of ``make test``). At the end the
published history must equal a fault-free replay of the same feeds through the
same pure pipeline, and every notification must have been sent exactly once.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from standins.fault_proxy import Fault, FaultProxy

from cps_covid.rules import applying, history, inputs, merge, outputs, publish_plan
from cps_covid.settings import DEFAULT_IGNORE_IDS
from flows.update import run_update
from local.feed_server import Route

pytestmark = [pytest.mark.soak, pytest.mark.usefixtures("prefect_api")]
ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("SOAK_RUNS", "500"))
FAULT_RATE = float(os.environ.get("SOAK_FAULT_RATE", "0.10"))
DAYS = 30
RESULTS = ROOT / "bench" / "soak-results.json"


def synthetic_feeds(schools: pd.DataFrame, seed: int = 7) -> list[tuple[date, bytes]]:
    """Season totals as the API would report them, run by run: mostly growth, some corrections."""
    rng = random.Random(seed)
    ids = list(schools["CPS_School_ID"])
    season = dict(zip(ids, (schools["gTotal"] - schools["preSY2122"]).astype(int), strict=True))
    runs_per_day = max(1, RUNS // DAYS)
    feeds = []
    for run in range(RUNS):
        day = date(2021, 9, 23) + timedelta(days=min(run // runs_per_day, DAYS - 1))
        if rng.random() < 0.3:
            for sid in rng.sample(ids, rng.randint(1, 6)):
                season[sid] += rng.randint(1, 3)
        if rng.random() < 0.03:
            sid = rng.choice([s for s, n in season.items() if n > 0])
            season[sid] -= 1
        records = [{"SchoolID": int(s), "TotalCaseCount": n} for s, n in season.items() if n]
        feeds.append((day, json.dumps(records).encode()))
    return feeds


def fault_free(feeds: list[tuple[date, bytes]], schools_csv: bytes, totals_csv: bytes) -> tuple[bytes, list[str]]:
    """The same feeds through the pure pipeline: the published table and the subject of each notification."""
    subjects = []
    for day, payload in feeds:
        feed = inputs.read_feed(payload, "feed")
        hist = inputs.read_history(schools_csv, totals_csv, ("a", "b"))
        result = applying.apply(feed, hist, day, ignore_ids=DEFAULT_IGNORE_IDS)
        if not result.changes.empty:
            subjects.append(outputs.notification_subject(result, day))
        schools_csv = history.csv_bytes(result.schools)
        totals_csv = history.csv_bytes(merge.district_totals(result.schools))
    return schools_csv, subjects


def test_soak_500_runs_with_random_faults(aws, feeds, monkeypatch) -> None:
    seed_schools = (ROOT / "data/history-2021-09-22/allCpsCovidData.csv").read_bytes()
    seed_totals = (ROOT / "data/history-2021-09-22/CPStotals.csv").read_bytes()
    schedule = synthetic_feeds(
        pd.read_csv(ROOT / "data/history-2021-09-22/allCpsCovidData.csv", dtype={"CPS_School_ID": str})
    )
    expected_table, expected_subjects = fault_free(schedule, seed_schools, seed_totals)

    monkeypatch.setenv("CPS_COVID_LEASE_SECONDS", "0")
    rng = random.Random(11)
    states: dict[str, int] = {}
    started = time.monotonic()
    with FaultProxy(aws.endpoint_url, seed=3) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        for code, status in (("SlowDown", 503), ("InternalError", 500), ("Throttling", 400)):
            proxy.add(Fault(r".", status=status, code=code, times=0, probability=FAULT_RATE / 3))
        for number, (day, payload) in enumerate(schedule):
            failures = [(503, {})] if rng.random() < FAULT_RATE else []
            url = feeds.route(f"/soak-{number}.json", Route(payload, "application/json", failures=failures))
            state = run_update(as_of=day, source=url)
            states[state.name] = states.get(state.name, 0) + 1
            if (number + 1) % 25 == 0:  # shown with -s: a 40-minute run should say where it is
                print(f"soak: {number + 1}/{RUNS} runs, {time.monotonic() - started:.0f} s, {states}", flush=True)
        proxy.clear()
        final = run_update(as_of=schedule[-1][0], source=url)
    elapsed = time.monotonic() - started
    faults = sum(1 for _, action in proxy.log if action != "forward")

    published = aws.client("s3").get_object(Bucket=aws.bucket, Key=publish_plan.SCHOOLS_KEY)["Body"].read()
    sent = [n for n in aws.sent_notifications() if n["topic_arn"] == aws.topic_arn]
    subjects = [n["subject"] for n in sent]
    RESULTS.write_text(
        json.dumps(
            {
                "runs": RUNS,
                "fault_rate": FAULT_RATE,
                "aws_requests": len(proxy.log),
                "aws_faults_injected": faults,
                "run_states": states,
                "notifications": len(subjects),
                "expected_notifications": len(expected_subjects),
                "notifications_as_fault_free": subjects == expected_subjects,
                "distinct_message_ids": len({n["message_id"] for n in sent}),
                "seconds": round(elapsed, 1),
                "identical_history": published == expected_table,
            },
            indent=1,
        )
        + "\n"
    )

    assert final.is_completed()
    assert published == expected_table
    # the same notifications in the same order: none lost, none sent twice (a resend would repeat a subject)
    assert subjects == expected_subjects
