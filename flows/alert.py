"""The alert flow: what the failure automations run to reach the operators' SNS topic.

An automation's ``send-notification`` action needs a notification block, and
SNS only takes signed requests, so the automations run this small flow instead
(a ``run-deployment`` action), which publishes with the flow's own credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger

from cps_covid.rules import clock
from cps_covid.rules.alarms import alert_text, in_school_year
from cps_covid.settings import Settings
from tasks.alarms import alarm_once, operators_topic, publish_alarm


@flow(name="cps-covid-alert", flow_run_name="alert-{reason}-{deployment}")
def alert(
    reason: str = "failed",
    deployment: str = "",
    flow_run_name: str = "",
    flow_run_id: str = "",
    state: str = "",
    window: str = "2 hours",
) -> str | None:
    """Tell the operators; a missing update outside the school year is not worth waking anyone."""
    settings = Settings.load()
    if not settings.alarm_topic_arn:
        raise ValueError("no alarm topic: set CPS_COVID_ALARM_TOPIC_ARN or alarm_topic_arn in cps_covid_settings")
    today = clock.today(settings.replay_clock, datetime.now(UTC), settings.timezone)
    if reason == "stale" and not in_school_year(today, settings.school_year):
        get_run_logger().info("No completed run for %s, but %s is outside the school year: no alarm", window, today)
        return None
    if flow_run_id and reason != "stale":  # at most one alarm per failing run (its own hook may have sent it)
        return alarm_once(deployment, flow_run_name, flow_run_id, state, settings, retried=True)
    text = alert_text(reason, deployment, flow_run_name, state, "", window=window)
    return publish_alarm(*text, operators_topic(settings))


if __name__ == "__main__":
    alert()
