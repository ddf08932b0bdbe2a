"""Alarm tasks: one alarm per failing run, and the notice that the next run of its deployment healed."""

from __future__ import annotations

import json
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from cps_covid.errors import ConcurrentWriteError
from cps_covid.publishing.resources import Heartbeat, Topic
from cps_covid.rules import alarms
from cps_covid.settings import Settings
from cps_covid.systems import aws, prefect_runs, s3, sns


@task(name="Claim the alarm", retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NO_CACHE)
def claim_alarm(flow_run_id: str, subject: str, bucket: s3.Bucket) -> bool:
    """Write the run's alarm marker if it is new: False when an alarm for that run was already sent."""
    body = json.dumps({"flow_run_id": flow_run_id, "subject": subject}).encode()
    try:
        bucket.put_new(alarms.alarm_key(flow_run_id), body, content_type="application/json", metadata={})
    except ConcurrentWriteError:
        get_run_logger().info("An alarm for flow run %s was already sent: not sending another", flow_run_id)
        return False
    return True


@task(name="Release the alarm", retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NO_CACHE)
def release_alarm(flow_run_id: str, bucket: s3.Bucket) -> None:
    """The alarm could not be sent: remove the marker so that a rerun of the alert sends it."""
    bucket.delete(alarms.alarm_key(flow_run_id))


@task(name="Publish to the alarm topic", retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NO_CACHE)
def publish_alarm(subject: str, body: str, operators: Topic) -> str:
    return operators.publish(subject, body)


def operators_topic(settings: Settings) -> sns.Topic:
    """The alarm topic (the caller checked that one is configured)."""
    return sns.Topic(aws.client("sns", settings.aws_credentials_block), settings.alarm_topic_arn)


def alarm_once(
    deployment_name: str, flow_run_name: str, flow_run_id: str, state_name: str, settings: Settings, *, retried: bool
) -> str | None:
    """The failure alarm of one run, sent only if no alarm for it was sent yet; returns the SNS message id.

    ``retried``: as the alert flow's tasks (with their retries); else called directly, from a failure hook.
    """
    claim, publish, release = (
        (claim_alarm, publish_alarm, release_alarm)
        if retried
        else (
            claim_alarm.fn,
            publish_alarm.fn,
            release_alarm.fn,
        )
    )
    why, as_of = prefect_runs.final_state(flow_run_id, settings.timezone)
    ui_url = prefect_runs.run_url(flow_run_id, settings.prefect_ui_url)
    subject, body = alarms.alert_text("failed", deployment_name, flow_run_name, state_name, ui_url, why, as_of)
    body += f"Flow run id: {flow_run_id}\n"
    bucket = s3.bucket_of(settings)
    if not claim(flow_run_id, subject, bucket):
        return None
    try:
        return publish(subject, body, operators_topic(settings))
    except Exception:
        release(flow_run_id, bucket)
        raise


def alarm_now(flow: Any, run: Any, state: Any) -> None:
    """``on_failure``/``on_crashed`` hook: a deployment's failing run sends its own alarm at once.

    The failure automation's alert is the backstop (a run killed outright cannot run a hook), but
    Prefect can hold a scheduled run's state events up to 15 minutes before automations see them
    (their ``Pending`` follows a ``Scheduled`` event the scheduler never emits); the alert then finds
    the alarm already sent.
    """
    logger = get_run_logger()
    try:
        if not getattr(run, "deployment_id", None):
            return  # not a deployment's run: whoever started it sees the failure
        settings = Settings.load()
        if not settings.alarm_topic_arn:
            return
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            deployment_name = client.read_deployment(run.deployment_id).name
        sent = alarm_once(deployment_name, run.name, str(run.id), state.name, settings, retried=False)
        logger.info("Alarm %s on the alarm topic", sent or "already sent")
    except Exception as err:  # the automation's alert still comes
        logger.warning("This run could not send its own alarm (%s): the failure automation's alert will", err)


@task(name="Tell the operators if it healed", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def tell_if_recovered(settings: Settings) -> str | None:
    """After a Completed run of a deployment whose previous run failed: the recovery notice on the alarm topic."""
    if not (flow_run.id and deployment.id and settings.alarm_topic_arn):
        return None  # not a deployment's run (CLI, demo, tests), or nobody to tell
    previous = prefect_runs.previous_finished_run(flow_run.id, deployment.id)
    if previous is None or not previous.failed:
        return None
    subject, body = alarms.recovery_text(
        deployment.name,
        flow_run.name,
        previous.name,
        previous.state_name,
        prefect_runs.run_url(flow_run.id, settings.prefect_ui_url),
    )
    message_id = publish_alarm.fn(subject, body, operators_topic(settings))
    get_run_logger().info("Recovery notice %s on the alarm topic: %s", message_id, subject)
    return f"operators told the deployment recovered (message {message_id}): {subject}"


@task(name="Put the heartbeat", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def put_heartbeat(heartbeat: Heartbeat) -> str:
    """One datapoint for the watchdog outside Prefect: its absence for two hours is alarmed by CloudWatch."""
    note = heartbeat.beat()
    get_run_logger().info("Heartbeat: %s", note)
    return note


def alarm_first_failure(flow: Any, run: Any, state: Any) -> None:
    """The watch's ``on_failure``/``on_crashed`` hook: it runs every minute, so one alarm per outage, not one
    a minute. A failing run alarms only when the deployment's previous finished run did not fail; the first
    run that completes again sends the recovery notice (``tell_if_recovered``)."""
    try:
        if getattr(run, "deployment_id", None):
            previous = prefect_runs.previous_finished_run(str(run.id), str(run.deployment_id))
            if previous is not None and previous.failed:
                get_run_logger().info("The previous run %s failed too: the operators already know", previous.name)
                return
    except Exception as err:  # when in doubt, alarm
        get_run_logger().warning("Could not read the previous run (%s): alarming", err)
    alarm_now(flow, run, state)
