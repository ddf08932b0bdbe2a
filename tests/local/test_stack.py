"""``make up``'s stack, through its own command: cron runs, a rerun, a broken feed's alarm, the recovery, the UI.

The stack plays a day every 30 seconds here. The test talks to it as an operator
does: the ``cps-covid stack`` and ``prefect deployment run`` commands, the
Prefect API's REST endpoints, moto's record of what SNS sent, and the UI in
headless Chromium. ``cps-covid stack down`` must then leave no process and no port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from cps_covid.rules.labels import date_label
from cps_covid.rules.render import subject
from cps_covid.rules.schema import SCHOOL_ID, day_column
from cps_covid.waiting import wait_for
from local.season_replay import real_schools
from local.stack import Stack, marked_processes

pytestmark = pytest.mark.slow  # a browser or the CLI in a subprocess

ROOT = Path(__file__).resolve().parents[2]
CPS_COVID = Path(sys.executable).with_name("cps-covid")
PREFECT = Path(sys.executable).with_name("prefect")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    CHROMIUM,
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--window-size=1400,1000",
    "--virtual-time-budget=8000",
    "--hide-scrollbars",
]
RUN_NAME = re.compile(r"update-2021-09-\d\d at \d\d:\d\d:\d\d \((backstop|feed changed [0-9a-f]{8})\)")


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "CPS_COVID_"))}


def stack_command(state: Path, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    env = clean_environment() | {"CPS_COVID_FETCH_BACKOFF_SECONDS": "0.05"}
    done = subprocess.run(
        [str(CPS_COVID), "stack", *args, "--state", str(state)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("stack")
    started = stack_command(state, "up", "--minutes-per-day", "0.5", "--from", FIRST_DAY.isoformat())
    found = Stack.read(state)
    assert found is not None and found.ui_url in started.stdout and "break the feed" in started.stdout
    try:
        yield found
    finally:
        subprocess.run([str(CPS_COVID), "stack", "down", "--state", str(state)], cwd=ROOT, timeout=120, check=False)
        print((state / "worker.log").read_text()[-3000:])


def api(stack: Stack, path: str, body: dict) -> list[dict]:
    request = urllib.request.Request(
        f"{stack.api_url}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def finished_run(stack: Stack, deployment: str, state: str, after: datetime, like: str = "") -> dict | None:
    """The latest run of ``deployment`` that started after ``after`` and ended in ``state`` (a state type)."""
    found = api(
        stack,
        "/flow_runs/filter",
        {
            "flow_runs": {"state": {"type": {"any_": [state]}}} | ({"name": {"like_": like}} if like else {}),
            "deployments": {"name": {"any_": [deployment]}},
            "sort": "START_TIME_DESC",
            "limit": 1,
        },
    )
    return found[0] if found and datetime.fromisoformat(found[0]["start_time"]) > after else None


def alarms(stack: Stack) -> list[dict]:
    with urllib.request.urlopen(f"{stack.moto_url}/moto-api/data.json", timeout=30) as answer:
        topics = json.load(answer).get("sns", {}).get("Topic", [])
    return [
        {"subject": sent[2], "message": sent[1]}
        for topic in topics
        if topic["arn"].endswith("-alarms")
        for sent in topic.get("sent_notifications", [])
    ]


@pytest.fixture(scope="module")
def cron_run(stack: Stack) -> dict:
    # the second day's: on the first, a fresh stack's first watch poll may have applied the feed before it
    return wait_for(
        lambda: finished_run(
            stack, "cps-covid-update", "COMPLETED", datetime(2000, 1, 1, tzinfo=UTC), f"update-{SECOND} %(backstop)"
        ),
        what="a cron run of cps-covid-update to complete through the worker",
        timeout=240,
        every=1,
    )


def mails(stack: Stack) -> list[str]:
    """The subjects of what the subscribers' topic sent, oldest first."""
    with urllib.request.urlopen(f"{stack.moto_url}/moto-api/data.json", timeout=30) as answer:
        topics = json.load(answer).get("sns", {}).get("Topic", [])
    return [sent[2] for t in topics if not t["arn"].endswith("-alarms") for sent in t.get("sent_notifications", [])]


FIRST_DAY = date(2021, 9, 14)
REPLAYED = [FIRST_DAY + timedelta(days=n) for n in range(2)]
"""Two replayed days: 2021-09-14 has no new case in the real history (its feed does not change), 2021-09-15's
feed changes at a random moment of it."""
SECOND = REPLAYED[1]


def test_every_replayed_day_is_published_on_its_own_day_and_mailed_under_it(stack: Stack, cron_run: dict) -> None:
    """Two replayed days at 30 s a day. Each day's first run is the backstop cron's, before the day's change;
    the feed changes at a random moment of the day, the watch (every 15 s) signals it and the update it
    triggers applies it, named for it (before the rerun below applies a day out of turn)."""

    def published() -> bool:
        url = f"{stack.moto_url}/{stack.bucket}/data/allCpsCovidData.csv"
        with urllib.request.urlopen(url, timeout=30) as answer:
            found = pd.read_csv(answer, dtype={SCHOOL_ID: str}).set_index(SCHOOL_ID)
        if not {day_column(d) for d in REPLAYED} <= set(found.columns):
            return False
        real = real_schools().set_index(SCHOOL_ID)
        return all(found[day_column(d)].equals(real.loc[found.index, day_column(d)]) for d in REPLAYED)

    wait_for(published, what="each replayed day published as the real file has it", timeout=420, every=2)
    real = real_schools().set_index(SCHOOL_ID)
    sent = mails(stack)
    for day in REPLAYED:
        cases = int(real[day_column(day)].clip(lower=0).sum())
        on_day = [subject for subject in sent if f"({date_label(day)})" in subject]
        assert on_day == ([subject(cases, day)] if cases else []), day

    runs = api(
        stack,
        "/flow_runs/filter",
        {
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
            "deployments": {"name": {"any_": ["cps-covid-update"]}},
            "sort": "START_TIME_ASC",
            "limit": 200,
        },
    )
    triggered = {}
    for day in REPLAYED:
        named = [r["name"].split(" (")[-1].rstrip(")") for r in runs if r["name"].startswith(f"update-{day} ")]
        assert "backstop" in named, (day, named)  # the day's first run, its column
        triggered[day] = [n for n in named if n.startswith("feed changed ")]
        # one change a day, at most one run for it; a fresh stack's first poll finds the ledger empty, so the
        # seeded day's feed is a change too
        assert len(triggered[day]) <= (2 if day == REPLAYED[0] else 1), (day, named)
    assert any(triggered.values()), triggered  # (a backstop run that started late may have seen a change first)
    events = api(stack, "/events/filter", {"filter": {"event": {"name": ["cps-covid.feed.changed"]}}, "limit": 50})
    signalled = {e["payload"]["sha256"][:8] for e in events["events"]}
    assert {n.removeprefix("feed changed ") for t in triggered.values() for n in t} <= signalled


def test_a_cron_run_updates_the_replayed_day_and_an_on_demand_rerun_completes(stack: Stack, cron_run: dict) -> None:
    assert RUN_NAME.fullmatch(cron_run["name"]), cron_run["name"]  # the resolved (replayed) day, not "today"
    assert cron_run["name"].endswith(" (backstop)")
    assert "auto-scheduled" in cron_run["tags"]
    as_of = cron_run["name"][len("update-") :][:10]

    env = clean_environment() | stack.environment()
    ran = subprocess.run(
        [str(PREFECT), "deployment", "run", "cps-covid-update/cps-covid-rerun", "-p", f"as_of={as_of}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rerun_id = re.search(r"flow-run/([0-9a-f-]{36})", ran.stdout).group(1)

    def rerun_state() -> str | None:
        (run,) = api(stack, "/flow_runs/filter", {"flow_runs": {"id": {"any_": [rerun_id]}}})
        return run["state_type"] if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED") else None

    assert wait_for(rerun_state, what="the rerun through the worker", timeout=180, every=1) == "COMPLETED"
    with urllib.request.urlopen(f"{stack.moto_url}/{stack.bucket}/data/allCpsCovidData.csv", timeout=30) as answer:
        header = answer.readline().decode()
    assert f"{as_of.replace('-', '')}" in header  # the replayed day is a day column of what was published


def test_a_broken_feed_alarms_at_once_and_the_next_completed_run_says_it_healed(stack: Stack, cron_run: dict) -> None:
    broken_at = datetime.now(UTC)
    stack_command(Path(stack.state_dir), "break", "--status", "404")
    try:
        failed = wait_for(
            lambda: finished_run(stack, "cps-covid-update", "FAILED", broken_at),
            what="a cron run on the broken feed to fail",
            timeout=180,
            every=1,
        )
        wait_for(  # and the watch, however slow the machine
            lambda: finished_run(stack, "cps-covid-watch", "FAILED", broken_at),
            what="a watch run on the broken feed to fail",
            timeout=180,
            every=1,
        )
    finally:
        healed_at = datetime.now(UTC)
        stack_command(Path(stack.state_dir), "heal")

    subject = f"cps-covid-update {failed['name']} Failed: HTTP 404 Not Found"
    alarm = wait_for(
        lambda: next((a for a in alarms(stack) if a["subject"] == subject), None), what=subject, timeout=120
    )
    assert f"It was updating {failed['name'][7:17]}." in alarm["message"]
    assert "Why: SourceError: " in alarm["message"] and f"{stack.feed_url}: HTTP 404 Not Found" in alarm["message"]
    assert f"{stack.ui_url}/runs/flow-run/{failed['id']}" in alarm["message"]

    healed = wait_for(
        lambda: finished_run(stack, "cps-covid-update", "COMPLETED", healed_at),
        what="the first run after the feed healed",
        timeout=180,
        every=1,
    )
    notice = wait_for(
        lambda: next((a for a in alarms(stack) if a["subject"].startswith("cps-covid-update recovered")), None),
        what="the recovery notice",
        timeout=120,
    )
    assert notice["subject"] == f"cps-covid-update recovered: {healed['name']} Completed"
    assert "ended Failed: the deployment has healed" in notice["message"]
    assert [a["subject"] for a in alarms(stack)].count(subject) == 1
    # the watch failed every 15 s meanwhile: one alarm for the outage, and its recovery
    try:
        watch_notice = wait_for(
            lambda: next((a for a in alarms(stack) if a["subject"].startswith("cps-covid-watch recovered")), None),
            what="the watch's recovery notice",
            timeout=120,
        )
    except TimeoutError as err:
        raise AssertionError(f"{err}; the alarms: {[a['subject'] for a in alarms(stack)]}") from None
    watch_alarms = [a["subject"] for a in alarms(stack) if a["subject"].startswith("cps-covid-watch watch Failed")]
    assert watch_alarms == ["cps-covid-watch watch Failed: HTTP 404 Not Found"], watch_alarms
    assert watch_notice["subject"] == "cps-covid-watch recovered: watch Completed"


def chromium(url: str, profile: Path, *args: str) -> str:
    done = subprocess.run(
        [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


def test_the_ui_shows_the_run_and_its_summary_artifact(stack: Stack, cron_run: dict, tmp_path: Path) -> None:
    artifacts = api(stack, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [cron_run["id"]]}}})
    by_key = {a["key"]: a for a in artifacts}
    assert {"update-summary", "feed-validation-data-docs", "output-validation-data-docs"} <= set(by_key)
    docs_link = re.search(r"\]\((http[^)]+fresh_feed\.html)\)", by_key["feed-validation-data-docs"]["data"]).group(1)
    with urllib.request.urlopen(docs_link, timeout=30) as answer:  # the Data Docs page kept with the run
        assert b"fresh_feed" in answer.read()

    summary_url = f"{stack.ui_url}/v2/artifacts/artifact/{by_key['update-summary']['id']}"
    dom = chromium(summary_url, tmp_path / "p1", "--dump-dom")
    assert "Can't connect to Server API" not in dom
    assert f"CPS COVID update for {cron_run['name'][7:17]}" in dom and "Objects written" in dom
    chromium(summary_url, tmp_path / "p2", f"--screenshot={tmp_path / 'summary.png'}")
    run_page = f"{stack.ui_url}/v2/runs/flow-run/{cron_run['id']}?tab=Artifacts"
    dom = chromium(run_page, tmp_path / "p3", "--dump-dom")
    assert cron_run["name"] in dom and "update-summary" in dom
    chromium(run_page, tmp_path / "p4", f"--screenshot={tmp_path / 'run.png'}")
    assert (tmp_path / "summary.png").stat().st_size > 10_000 and (tmp_path / "run.png").stat().st_size > 10_000


def port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((parsed.hostname, parsed.port)) == 0


def test_down_stops_exactly_what_up_started(stack: Stack) -> None:
    state = Path(stack.state_dir)
    assert marked_processes(str(state))  # the supervisor, the Prefect server, the worker...
    assert all(port_open(u) for u in (stack.api_url, stack.moto_url, stack.feed_url))

    done = stack_command(state, "down", timeout=120)

    assert "is down" in done.stdout
    assert marked_processes(str(state)) == []
    urls = (stack.api_url, stack.moto_url, stack.feed_url)
    assert wait_for(lambda: not any(port_open(u) for u in urls), what="the stack's ports to close", timeout=10)
    assert not (state / "stack.json").exists() and (state / "worker.log").exists()  # logs are kept
