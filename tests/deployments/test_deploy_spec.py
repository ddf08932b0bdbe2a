"""What ``cps-covid deploy`` hands ``prefect deploy`` for each target (pure: no server)."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.events import DeploymentTriggerTypes
from pydantic import TypeAdapter

from cps_covid.operations import deploy as deploying

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["cps-covid-update", "cps-covid-rerun", "cps-covid-watch", "cps-vaccination-update", "cps-covid-alert"]


def by_name(spec: dict) -> dict[str, dict]:
    return {d["name"]: d for d in spec["deployments"]}


def test_the_process_target_runs_everything_from_the_checkout_on_one_pool(tmp_path: Path) -> None:
    spec = deploying.target_spec("process", None, tmp_path)

    assert "build" not in spec and "push" not in spec  # no image to build: prefect-docker is not needed
    assert spec["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path)}}]
    assert [d["name"] for d in spec["deployments"]] == NAMES
    assert {d["work_pool"]["name"] for d in spec["deployments"]} == {"cps-covid-process"}
    assert all(d["work_pool"].get("job_variables", {}) == {} for d in spec["deployments"])


def test_the_ecs_target_keeps_the_pools_and_takes_the_given_image() -> None:
    spec = by_name(deploying.target_spec("ecs", "registry/cps-covid-etl:1", ROOT))
    raw = yaml.safe_load((ROOT / "prefect.yaml").read_text())

    assert deploying.target_spec("ecs", "x", ROOT)["pull"] == raw["pull"]  # the image's /app
    assert spec["cps-covid-update"]["work_pool"] == {
        "name": "cps-covid-ecs",
        "job_variables": {
            "image": "registry/cps-covid-etl:1",
            "family": "cps-covid-update",
            "match_latest_revision_in_family": True,
        },
    }
    assert spec["cps-covid-alert"]["work_pool"] == {"name": "cps-covid-alerts", "job_variables": {}}
    assert raw["deployments"][0]["work_pool"]["job_variables"]["image"] == deploying.BUILT_IMAGE  # not mutated


def test_a_cron_override_changes_that_deployment_only() -> None:
    spec = by_name(deploying.target_spec("process", None, ROOT, crons={"cps-covid-update": "*/2 * * * *"}))
    assert spec["cps-covid-update"]["schedules"] == [
        {"cron": "*/2 * * * *", "timezone": "America/Chicago", "active": True, "parameters": {"trigger": "backstop"}}
    ]
    assert spec["cps-vaccination-update"]["schedules"][0]["cron"] == "10 0 * * *"


def test_the_failure_triggers_are_valid_deployment_triggers_that_run_the_alert() -> None:
    """The former ``deployments/automations.yaml``, now the alert deployment's ``triggers:``."""
    spec = by_name(deploying.target_spec("process", None, ROOT))
    assert [d for d, item in spec.items() if item.get("triggers")] == ["cps-covid-update", "cps-covid-alert"]
    failed, stale, stopped = (
        TypeAdapter(DeploymentTriggerTypes).validate_python(t) for t in spec["cps-covid-alert"]["triggers"]
    )

    assert failed.name == "cps-covid run failed" and failed.posture.value == "Reactive"
    assert failed.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
    assert failed.for_each == {"prefect.resource.id"} and failed.threshold == 1 and failed.within.total_seconds() == 0
    assert failed.match_related.root == {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": ["cps-covid-update", "cps-covid-rerun", "cps-vaccination-update"],
    }
    assert failed.parameters == {
        "reason": "failed",
        "deployment": "{{ deployment.name }}",
        "flow_run_name": "{{ flow_run.name }}",
        "flow_run_id": "{{ flow_run.id|string }}",
        "state": "{{ flow_run.state.name }}",
    }
    assert stale.name == "cps-covid update is stale" and stale.posture.value == "Proactive"
    assert stale.expect == {"prefect.flow-run.Completed"} and stale.within.total_seconds() == 7 * 3600
    assert stale.match_related.root == {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": "cps-covid-update",
    }
    assert stale.parameters == {"reason": "stale", "deployment": "cps-covid-update", "window": "7 hours"}
    # the watch's pulse: a failed run is alive (its own hook alarmed); no run at all is what this is for
    assert stopped.expect == {"prefect.flow-run.Completed", "prefect.flow-run.Failed"}
    assert stopped.posture.value == "Proactive" and stopped.within.total_seconds() == 15 * 60
    assert stopped.match_related.root == {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": "cps-covid-watch",
    }
    assert stopped.parameters == {"reason": "stale", "deployment": "cps-covid-watch", "window": "15 minutes"}


def test_a_change_runs_the_update_at_once_and_a_burst_runs_it_once() -> None:
    from cps_covid.rules import watch
    from cps_covid.settings import Settings

    spec = by_name(deploying.target_spec("process", None, ROOT))
    (changed,) = (TypeAdapter(DeploymentTriggerTypes).validate_python(t) for t in spec["cps-covid-update"]["triggers"])

    assert changed.expect == {watch.EVENT} and changed.match.root == {"prefect.resource.id": watch.RESOURCE_ID}
    assert changed.posture.value == "Reactive" and changed.threshold == 1  # the first event acts at once
    # the watch signals nothing inside the trigger's window, where Prefect would drop the event
    assert changed.within.total_seconds() == Settings.model_fields["watch_window_seconds"].default
    assert changed.parameters == {"trigger": "feed changed {{ event.payload.sha256[:8] }}"}  # no data: a name
    update = spec["cps-covid-update"]
    assert update["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}  # a change waits, not lost
    assert [(s["cron"], s["parameters"]) for s in update["schedules"]] == [
        ("5 0,6,12,18 * * *", {"trigger": "backstop"})
    ]
    assert spec["cps-covid-watch"]["schedules"][0]["cron"] == "* * * * *"
    assert spec["cps-covid-watch"]["concurrency_limit"]["collision_strategy"] == "CANCEL_NEW"


def test_paused_deployments_keep_their_schedules_inactive_and_windows_replace_a_triggers_within() -> None:
    spec = by_name(
        deploying.target_spec("process", None, ROOT, paused=["cps-covid-watch"], windows={"cps-covid-update": 10})
    )
    assert [s["active"] for s in spec["cps-covid-watch"]["schedules"]] == [False]
    assert [s["active"] for s in spec["cps-covid-update"]["schedules"]] == [True]
    assert [t["within"] for t in spec["cps-covid-update"]["triggers"]] == [10]
    assert [t["within"] for t in spec["cps-covid-alert"]["triggers"]] == [0, 7 * 3600, 15 * 60]  # untouched
