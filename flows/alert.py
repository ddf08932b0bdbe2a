"""The alert flow: what the failure automations run to reach the operators' SNS topic.

An automation's ``send-notification`` action needs a notification block, and
SNS only takes signed requests, so the automations run this small flow instead
(a ``run-deployment`` action), which publishes with the flow's own credentials.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task

from cps_covid.io import aws, sns
from cps_covid.settings import Settings

SUBJECT_LIMIT = 100


def in_school_year(day: date, window: str) -> bool:
    """``window`` is ``MM-DD/MM-DD``; it may wrap over the new year (08-15/06-20)."""
    start, end = (tuple(int(p) for p in part.split("-")) for part in window.split("/"))
    here = (day.month, day.day)
    return start <= here <= end if start <= end else here >= start or here <= end


def alert_text(
    reason: str, deployment: str, flow_run_name: str, state: str, ui_url: str, why: str = "", as_of: str = ""
) -> tuple[str, str]:
    """Subject and body; ``why`` is the first line of the run's final state message, ``as_of`` the day it updated."""
    if reason == "stale":
        subject = f"cps-covid: no completed {deployment} run for 2 hours"
        body = (
            f"No run of the deployment {deployment} has completed in the last 2 hours during the school year.\n"
            "The dashboard is not being updated: check the work pool, the worker and the last runs.\n"
        )
    else:
        # SNS takes 100 characters: the deployment names the project, the error's class and URL are in the body
        short = re.sub(r"^([A-Z]\w*(Error|Exception|Failed): )?(\w+://\S+: )?", "", why)  # the URL is in the body
        subject = f"{deployment} {flow_run_name} {state}" + (f": {short}" if short else "")
        body = f"The flow run {flow_run_name} of the deployment {deployment} ended in state {state}.\n"
        if as_of:
            body += f"It was updating {as_of}.\n"
        if why:
            body += f"\nWhy: {why}\n"
    if ui_url:
        body += f"\nOpen the run in the Prefect UI: {ui_url}\n"
    return subject[:SUBJECT_LIMIT], body


def run_url(flow_run_id: str, settings: Settings) -> str:
    """The run's page in the Prefect UI (``prefect_ui_url``, else Prefect's own UI URL setting)."""
    if not flow_run_id:
        return ""
    from prefect.settings import PREFECT_UI_URL

    base = settings.prefect_ui_url or PREFECT_UI_URL.value() or ""
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else ""


def final_state(flow_run_id: str) -> tuple[str, str]:
    """The first line of a run's final state message and the day it updated (its as_of, else its start day)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    lines = (run.state.message or "").strip().splitlines() if run.state else []
    why = lines[0].removeprefix("Flow run encountered an exception: ") if lines else ""
    started = run.start_time or run.expected_start_time
    as_of = run.parameters.get("as_of") or (
        started.astimezone(ZoneInfo("America/Chicago")).date().isoformat() if started else ""
    )
    return why, str(as_of)


@task(name="Publish to the alarm topic", retries=3, retry_delay_seconds=[2, 10, 30])
def publish_alarm(subject: str, body: str, settings: Settings) -> str:
    return sns.publish(aws.client("sns", settings.aws_credentials_block), settings.alarm_topic_arn, subject, body)


@flow(name="cps-covid-alert", flow_run_name="alert-{reason}-{deployment}")
def alert(
    reason: str = "failed",
    deployment: str = "",
    flow_run_name: str = "",
    flow_run_id: str = "",
    state: str = "",
) -> str | None:
    """Tell the operators; a missing update outside the school year is not worth waking anyone."""
    settings = Settings.load()
    if not settings.alarm_topic_arn:
        raise ValueError("no alarm topic: set CPS_COVID_ALARM_TOPIC_ARN or alarm_topic_arn in cps_covid_settings")
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    if reason == "stale" and not in_school_year(today, settings.school_year):
        get_run_logger().info("No completed run for 2 hours, but %s is outside the school year: no alarm", today)
        return None
    why, as_of = final_state(flow_run_id) if flow_run_id and reason != "stale" else ("", "")
    subject, body = alert_text(reason, deployment, flow_run_name, state, run_url(flow_run_id, settings), why, as_of)
    if flow_run_id:
        body += f"Flow run id: {flow_run_id}\n"
    return publish_alarm(subject, body, settings)


if __name__ == "__main__":
    alert()
