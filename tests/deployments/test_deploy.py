"""Deploy to a real Prefect server, then let a real process worker run the deployments."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.deployments import run_deployment

from cps_covid.operations import deploy as deploying
from cps_covid.rules import publish_plan
from cps_covid.rules.clock import ReplayClock
from cps_covid.waiting import wait_for
from local.aws_emulator import Emulated, provision, seed_history
from local.feed_server import FeedServer, Route

ROOT = Path(__file__).resolve().parents[2]
FEED = (ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()
PAUSED = ["cps-covid-watch"]  # this module runs the watch on demand (its last test)
TODAY = date(2021, 9, 23)
"""The deployed runs' day: a replay clock on which 2021-09-23 lasts the whole module (runs without ``as_of``)."""


@pytest.fixture(scope="module")
def emulated(moto_endpoint: str) -> Emulated:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    found = provision(moto_endpoint)
    seed_history(found, ROOT / "data/history-2021-09-22")
    return found


@pytest.fixture(scope="module")
def flow_env(emulated: Emulated, source: FeedServer, prefect_api: str) -> dict[str, str]:
    return (
        {k: v for k, v in os.environ.items() if not k.startswith(("CPS_COVID_", "AWS_"))}
        | emulated.environment()
        | {
            "CPS_COVID_SOURCE_URL": source.url("/feed.csv"),
            "CPS_COVID_FETCH_BACKOFF_SECONDS": "0.05",
            "CPS_COVID_REPLAY_CLOCK": str(ReplayClock(TODAY, datetime.now(UTC) - timedelta(hours=1), 10**6)),
            "PREFECT_API_URL": prefect_api,
        }
    )


@pytest.fixture(scope="module")
def deployed(flow_env: dict[str, str]) -> deploying.Changes:
    return deploying.deploy(target="process", env=flow_env, paused=PAUSED)


@pytest.fixture(scope="module")
def worker(
    deployed: deploying.Changes, flow_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, start_worker
) -> Iterator[None]:
    with start_worker(flow_env, tmp_path_factory.mktemp("worker") / "worker.log"):
        yield


def flow_run_state(flow_run_id: UUID) -> str:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state.name


def test_deploy_creates_the_pool_deployments_and_their_triggers(deployed) -> None:
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        with pytest.raises(ObjectNotFound):  # --target process: no ECS pool to show red without AWS
            client.read_work_pool("cps-covid-ecs")
        process = client.read_work_pool("cps-covid-process")
        update = client.read_deployment_by_name("cps-covid-update/cps-covid-update")
        rerun = client.read_deployment_by_name("cps-covid-update/cps-covid-rerun")
        alert = client.read_deployment_by_name("cps-covid-alert/cps-covid-alert")
        automations = {a.name: a for a in client.read_automations()}

    checked_in = json.loads((ROOT / "deployments/ecs-base-job-template.json").read_text())
    ecs = deploying.pool_template("ecs", {})
    assert ecs["job_configuration"] == checked_in["job_configuration"]
    assert ecs["variables"]["properties"]["memory"]["default"] == 4096
    assert process.type == "process"
    (schedule,) = update.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        "5 0,6,12,18 * * *",
        "America/Chicago",
        True,
    )
    assert schedule.parameters == {"trigger": "backstop"}
    assert update.global_concurrency_limit.limit == 1
    assert update.concurrency_options.collision_strategy.value == "ENQUEUE"
    assert update.parameters == {"dry_run": False} and update.work_pool_name == "cps-covid-process"
    assert rerun.schedules == [] and set(rerun.parameter_openapi_schema["properties"]) == {
        "as_of",
        "source",
        "dry_run",
        "new_season",
        "fill_gap",
        "trigger",
    }
    described = rerun.parameter_openapi_schema["properties"]
    assert described["fill_gap"]["description"].startswith("Confirm that the days since the history's last day")
    assert all(p.get("description") for p in described.values())  # the UI's Custom run form explains each
    # the alert deployment's triggers, as automations: each runs the alert with the event's templates
    failed = automations["cps-covid run failed"]
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
    assert failed.trigger.for_each == {"prefect.resource.id"} and failed.trigger.within.total_seconds() == 0
    assert "cps-covid-rerun" in failed.trigger.match_related.root["prefect.resource.name"]
    (action,) = failed.actions
    assert (action.type, action.source, action.deployment_id) == ("run-deployment", "selected", alert.id)
    assert action.parameters["flow_run_id"] == "{{ flow_run.id|string }}"  # left for the event, not the deploy
    stale = automations["cps-covid update is stale"]
    assert stale.trigger.posture.value == "Proactive" and stale.trigger.within.total_seconds() == 7 * 3600
    assert stale.trigger.match_related.root["prefect.resource.name"] == "cps-covid-update"
    assert [a.deployment_id for a in stale.actions] == [alert.id]


def automations_held() -> list[dict]:
    """The server's automations as deployed, without what each deploy renews (ids, times)."""
    with get_client(sync_client=True) as client:
        held = [a.model_dump(mode="json", include=deploying.AUTOMATION_FIELDS) for a in client.read_automations()]
    return sorted((deploying.content_of(a) for a in held), key=json.dumps)


def test_deploying_twice_changes_nothing(deployed, flow_env) -> None:
    """Prefect rewrites each deployment and recreates its triggers: the same content, never a second copy."""
    before = automations_held()
    with get_client(sync_client=True) as client:
        held = deploying.held(client, "cps-covid-update/cps-covid-update")

    again = deploying.deploy(target="process", env=flow_env, paused=PAUSED)

    assert again.created == [] and again.updated == [] and again.removed == []
    assert "deployment cps-covid-alert/cps-covid-alert" in again.unchanged
    assert [a["name"] for a in before] == [
        "cps-covid feed changed",
        "cps-covid run failed",
        "cps-covid update is stale",
        "cps-covid watch stopped",
    ]
    assert automations_held() == before
    with get_client(sync_client=True) as client:
        assert deploying.held(client, "cps-covid-update/cps-covid-update") == held


def test_an_automation_the_deployment_does_not_own_is_replaced_by_its_trigger(deployed, flow_env) -> None:
    """As ``deployments/automations.yaml`` left them: same name, no owner; both would run the alert."""
    from prefect.events.actions import DoNothing
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    with get_client(sync_client=True) as client:
        left = client.create_automation(
            AutomationCore(
                name="cps-covid update is stale",
                trigger=EventTrigger(expect={"prefect.flow-run.Completed"}),
                actions=[DoNothing()],
            )
        )

    again = deploying.deploy(target="process", env=flow_env, paused=PAUSED)

    assert again.removed == ["automation cps-covid update is stale (not a deployment's own)"]
    with get_client(sync_client=True) as client:
        (stale,) = client.read_automations_by_name("cps-covid update is stale")
    assert stale.id != left and stale.trigger.posture.value == "Proactive"


def test_worker_runs_a_rerun_with_parameters(worker, emulated) -> None:
    flow_run = run_deployment(
        "cps-covid-update/cps-covid-rerun",
        parameters={"as_of": "2021-09-23", "dry_run": False},
        timeout=300,
        poll_interval=0.5,
    )
    assert flow_run.state.is_completed(), flow_run.state.message
    assert re.fullmatch(r"update-2021-09-23 at \d\d:\d\d:\d\d", flow_run.name), flow_run.name
    s3 = emulated.client("s3")
    versions = s3.list_object_versions(Bucket=emulated.bucket, Prefix=publish_plan.PAGE_KEY).get("Versions", [])
    assert len(versions) == 1
    assert [n["subject"] for n in emulated.sent_notifications() if n["topic_arn"] == emulated.topic_arn] == [
        "CPS COVID update: 22 new cases (Sep. 23, 2021)"
    ]


def summary_day(flow_run_id: UUID) -> str:
    """The day the run's body updated, as its summary artifact's headline says."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    (summary,) = [a.data for a in artifacts if a.key == "update-summary"]
    return re.search(r"# CPS COVID update for (\d{4}-\d\d-\d\d)", summary).group(1)


@pytest.mark.parametrize(
    ("boundary_in", "scheduled_from_boundary", "day"),
    [
        (-5, -1, "2021-09-22"),  # scheduled a second before the boundary, started seconds after it (late)
        (6, -1, "2021-09-22"),  # started a second before the boundary, on time
        (6, 1, "2021-09-23"),  # started a second after it, on time
    ],
    ids=["late-after-the-boundary", "a-second-before", "a-second-after"],
)
def test_runs_scheduled_either_side_of_a_day_boundary_update_their_scheduled_days(
    worker, boundary_in: int, scheduled_from_boundary: int, day: str
) -> None:
    """Through the worker, with a replay clock whose day 2021-09-22 ends at ``boundary`` (one run at a time: the
    rerun deployment's concurrency limit cancels a second). Each run's name, body and summary name its scheduled
    day, whenever it started."""
    boundary = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=boundary_in)
    replay = ReplayClock(date(2021, 9, 22), boundary - timedelta(minutes=60), 60)
    scheduled = boundary + timedelta(seconds=scheduled_from_boundary)
    flow_run = run_deployment(
        "cps-covid-update/cps-covid-rerun",
        parameters={"dry_run": True},
        scheduled_time=scheduled,
        job_variables={"env": {"CPS_COVID_REPLAY_CLOCK": str(replay)}},
        timeout=0,
    )
    final = ("Completed", "Failed", "Crashed", "Cancelled")
    assert wait_for(lambda: flow_run_state(flow_run.id) in final, what="the run", timeout=240)
    with get_client(sync_client=True) as client:
        done = client.read_flow_run(flow_run.id)
    assert done.state.is_completed(), done.state.message
    assert done.name.startswith(f"update-{day} at "), (done.name, scheduled, done.start_time)
    assert summary_day(flow_run.id) == day, (scheduled, done.start_time)
    if boundary_in < 0:
        assert done.start_time > boundary  # it really started after its scheduled day had ended


def test_a_failed_run_reaches_the_alarm_topic(worker, emulated, source) -> None:
    flow_run = run_deployment(
        "cps-covid-update/cps-covid-rerun",
        parameters={"as_of": "2021-09-24", "source": source.url("/gone.csv")},
        timeout=300,
        poll_interval=0.5,
    )
    assert flow_run.state.is_failed()

    def alarms() -> list[dict]:  # about this run: the deployed cron may run (and fail) for today meanwhile
        return [
            n
            for n in emulated.sent_notifications()
            if n["topic_arn"] == emulated.alarm_topic_arn and f"Flow run id: {flow_run.id}" in n["message"]
        ]

    (alarm,) = wait_for(alarms, what="the failing run's own SNS alarm", timeout=180)
    assert alarm["subject"] == f"cps-covid-rerun {flow_run.name} Failed: HTTP 404 Not Found"  # why, not only that

    def alert_run():  # the failure automation's backstop, for the same run
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="alert-failed-cps-covid-rerun"))
            )
        return next(
            (r for r in runs if r.state and r.state.is_final() and r.parameters["flow_run_id"] == str(flow_run.id)),
            None,
        )

    backstop = wait_for(alert_run, what="the failure automation's alert run", timeout=180)
    assert backstop.state.is_completed() and alarms() == [alarm]  # it found the alarm sent: at most one per run
    assert "It was updating 2021-09-24." in alarm["message"]
    assert f"Why: SourceError: {source.url('/gone.csv')}: HTTP 404 Not Found" in alarm["message"]
    assert str(flow_run.id) in alarm["message"] and "/runs/flow-run/" in alarm["message"]


def test_an_update_started_while_one_runs_waits_for_it_then_finds_the_feed_applied(worker, source) -> None:
    """ENQUEUE: a change signalled during a backstop run must not be cancelled and lost."""
    gate = threading.Event()
    held = Route(FEED, gate=gate)
    url = source.route("/held.csv", held)
    try:
        first = run_deployment(
            "cps-covid-update/cps-covid-update", parameters={"as_of": "2021-09-23", "source": url}, timeout=0
        )
        assert held.arrived.wait(timeout=180), "the first run never fetched"
        second = run_deployment(
            "cps-covid-update/cps-covid-update", parameters={"as_of": "2021-09-23", "source": url}, timeout=0
        )

        def waiting() -> bool:
            with get_client(sync_client=True) as client:
                return client.read_flow_run(second.id).state.name == "AwaitingConcurrencySlot"

        assert wait_for(waiting, what="the second run waiting for the first", timeout=180)
    finally:
        gate.set()
    finals = ("Completed", "Failed", "Crashed", "Cancelled")
    assert wait_for(lambda: flow_run_state(first.id) in finals, what="the first run", timeout=180)
    assert wait_for(lambda: flow_run_state(second.id) in finals, what="the second run", timeout=180)
    assert (flow_run_state(first.id), flow_run_state(second.id)) == ("Completed", "Completed")
    assert source.requests["/held.csv"] == 2  # the second read the feed itself, after the first applied it


def test_the_vaccination_deployment_runs_daily_after_midnight(deployed) -> None:
    """Its flow runs in tests/flows/test_vaccination.py; the worker path is the same as the rerun's above."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("cps-vaccination-update/cps-vaccination-update")
        (failed,) = client.read_automations_by_name("cps-covid run failed")
    (schedule,) = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        "10 0 * * *",
        "America/Chicago",
        True,
    )
    assert deployment.global_concurrency_limit.limit == 1 and sorted(deployment.tags) == ["cps-covid", "vaccination"]
    assert deployment.entrypoint == "flows/vaccination.py:vaccination_update"
    assert deployment.parameters == {"dry_run": False} and deployment.work_pool_name == "cps-covid-process"
    assert set(deployment.parameter_openapi_schema["properties"]) == {"as_of", "source", "dry_run"}
    assert "cps-vaccination-update" in failed.trigger.match_related.root["prefect.resource.name"]


def feed_events() -> list:
    from prefect.events.filters import EventFilter, EventNameFilter

    from cps_covid.rules import watch

    with get_client(sync_client=True) as client:
        return client.read_events(filter=EventFilter(event=EventNameFilter(name=[watch.EVENT])), limit=50).events


def triggered_runs() -> list:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="(feed changed ")))
    return [r for r in runs if r.state and r.state.is_final()]


def test_a_feed_change_signals_once_and_runs_one_update_and_no_change_signals_nothing(
    worker, emulated, source, flow_env, monkeypatch
) -> None:
    """The watch polls in this process (its schedule is paused here; its deployed runs are the next test's), the
    trigger and the update run as deployed."""
    from flows.watch import run_watch

    for name, value in flow_env.items():
        if name.startswith(("CPS_COVID_", "AWS_")):
            monkeypatch.setenv(name, value)
    run_deployment("cps-covid-update/cps-covid-rerun", parameters={}, timeout=300, poll_interval=0.5)
    quiet = run_watch()  # what the rerun applied is no change
    assert quiet.is_completed() and quiet.message.startswith("no change: body "), quiet.message

    one_more = FEED + b'"09/22/2021","609772","ADDAMS","Student"\r\n'  # one case more at ADDAMS
    source.route("/feed.csv", Route(one_more, validators=True))
    changed = run_watch()
    assert changed.is_completed() and changed.message.startswith("changed to "), changed.message
    (update,) = wait_for(triggered_runs, what="the update the change triggered to finish", timeout=240)
    assert update.state.is_completed(), update.state.message
    sha = hashlib.sha256(one_more).hexdigest()
    assert update.name.startswith("update-2021-09-23 at ") and update.name.endswith(f"(feed changed {sha[:8]})")

    again = run_watch()  # a conditional GET: 304
    assert again.is_completed() and again.message.startswith("no change"), again.message
    assert source.not_modified["/feed.csv"] == 1
    (event,) = feed_events()
    assert event.payload["sha256"] == sha and event.resource.id == "cps-covid.feed"
    assert len(triggered_runs()) == 1
    mail = [n["subject"] for n in emulated.sent_notifications() if n["topic_arn"] == emulated.topic_arn]
    assert mail[-1] == "CPS COVID update: 1 new case (Sep. 23, 2021)"


def test_a_failing_watch_alarms_once_per_outage_and_says_when_it_healed(worker, emulated, source) -> None:
    """The watch runs every minute: its failures alarm once, from its own hook, and its recovery is told."""
    watched, gone = "cps-covid-watch/cps-covid-watch", source.url("/gone.json")
    first = run_deployment(watched, parameters={"source": gone}, timeout=300, poll_interval=0.5)
    second = run_deployment(watched, parameters={"source": gone}, timeout=300, poll_interval=0.5)
    assert first.state.is_failed() and second.state.is_failed()
    healed = run_deployment(watched, timeout=300, poll_interval=0.5)
    assert healed.state.is_completed(), healed.state.message

    def about_the_watch() -> list[dict]:
        sent = [n for n in emulated.sent_notifications() if n["topic_arn"] == emulated.alarm_topic_arn]
        found = [n for n in sent if n["subject"].startswith("cps-covid-watch ")]
        return found if any(" recovered: " in n["subject"] for n in found) else []

    alarm, recovered = wait_for(about_the_watch, what="the watch's alarm and its recovery notice", timeout=180)
    assert alarm["subject"] == "cps-covid-watch watch Failed: HTTP 404 Not Found"
    assert f"Flow run id: {first.id}" in alarm["message"]  # the first failure, not the second
    assert recovered["subject"] == "cps-covid-watch recovered: watch Completed"
