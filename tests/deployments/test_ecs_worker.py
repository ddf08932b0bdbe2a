"""The ECS path: a real prefect-aws ECS worker runs the flow as a Fargate task of our image.

The steps are docs/deploying.md's "To a real AWS account, step by step", on loopback:
the stack from ``deployments/cloudformation.yaml`` created on the moto server, the
history put in its bucket, ``make image``, the settings exported from the stack's
outputs, ``cps-covid deploy --target ecs``, the two workers, a rerun. What AWS
would do with the task (start the container, report its state) ``FargateStandIn``
does; see ``standins/fargate.py`` for what it leaves out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from containers import docker
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.deployments import run_deployment
from standins.fargate import FargateStandIn, TaskRun

from cps_covid.rules import publish_plan
from cps_covid.waiting import wait_for
from local.aws_emulator import Emulated, aws_environment, create_distribution, seed_history
from local.feed_server import FeedServer, Route
from local.prefect_server import free_port

ROOT = Path(__file__).resolve().parents[2]
# moto's CloudFormation skips what it cannot create (CloudFront, a CloudWatch alarm, bucket and queue policies), loudly
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")
STACK = "cps-covid"
FAMILY = "cps-covid-update"
FEED = (ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()


@pytest.fixture(scope="module")
def outputs(moto_endpoint: str) -> dict[str, str]:
    """Step 1: the stack, on a fresh moto account; and the history the dashboard served, in its bucket."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    probe = Emulated(moto_endpoint, "", "", "")
    cfn = probe.client("cloudformation")
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=(ROOT / "deployments/cloudformation.yaml").read_text(),
        Parameters=[{"ParameterKey": "BucketName", "ParameterValue": "cpscovid-ecs"}],
        Capabilities=["CAPABILITY_IAM"],
    )
    (stack,) = cfn.describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    found = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    # moto's CloudFormation cannot make a CloudFront distribution (the flow's one missing output): made directly
    assert "DistributionId" not in found
    found["DistributionId"] = create_distribution(probe, found["BucketName"])
    seed_history(account_of(moto_endpoint, found), ROOT / "data/history-2021-09-22")
    return found


def account_of(endpoint: str, outputs: dict[str, str]) -> Emulated:
    return Emulated(
        endpoint,
        outputs["BucketName"],
        outputs["DistributionId"],
        outputs["SubscribersTopicArn"],
        outputs["AlarmTopicArn"],
    )


@pytest.fixture(scope="module")
def account(moto_endpoint: str, outputs: dict[str, str]) -> Emulated:
    return account_of(moto_endpoint, outputs)


@pytest.fixture(scope="module")
def aws_env(moto_endpoint: str) -> dict[str, str]:
    """What every process here needs to reach "AWS": the emulator's endpoint, region and keys."""
    return aws_environment(moto_endpoint)


@pytest.fixture(scope="module")
def exported(outputs: dict[str, str], source: FeedServer, aws_env: dict[str, str], prefect_api: str) -> dict[str, str]:
    """Step 3: the settings and the ECS pool's ids, named as docs/deploying.md exports them."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("CPS_COVID_", "AWS_", "PREFECT_"))}
    return (
        plain
        | aws_env
        | {
            "PREFECT_API_URL": prefect_api,
            "CPS_COVID_BUCKET": outputs["BucketName"],
            "CPS_COVID_DISTRIBUTION_ID": outputs["DistributionId"],
            "CPS_COVID_TOPIC_ARN": outputs["SubscribersTopicArn"],
            "CPS_COVID_ALARM_TOPIC_ARN": outputs["AlarmTopicArn"],
            "CPS_COVID_SOURCE_URL": source.url("/feed.csv"),
            "CPS_COVID_FETCH_BACKOFF_SECONDS": "0.05",
            "CPS_COVID_ECS_CLUSTER": outputs["ClusterName"],
            "CPS_COVID_ECS_TASK_ROLE_ARN": outputs["TaskRoleArn"],
            "CPS_COVID_ECS_EXECUTION_ROLE_ARN": outputs["ExecutionRoleArn"],
            "CPS_COVID_ECS_LOG_GROUP": outputs["LogGroupName"],
        }
    )


@pytest.fixture(scope="module")
def deployed(image: str, exported: dict[str, str]) -> str:
    """Step 4: ``cps-covid deploy --target ecs --image IMAGE``, the command ``make deploy`` runs."""
    cli = Path(sys.executable).with_name("cps-covid")
    done = subprocess.run(
        [str(cli), "deploy", "--target", "ecs", "--image", image],
        env=exported,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def fargate(outputs: dict[str, str], moto_endpoint: str, aws_env: dict[str, str]) -> Iterator[FargateStandIn]:
    """What AWS does with a task: its role's keys (here the emulator's) and its region in the container."""
    with FargateStandIn(Emulated(moto_endpoint, "", "", ""), task_environment=aws_env) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def workers(
    deployed: str,
    fargate: FargateStandIn,
    exported: dict[str, str],
    outputs: dict[str, str],
    aws_env: dict[str, str],
    image: str,
    prefect_api: str,
    tmp_path_factory: pytest.TempPathFactory,
    start_worker,
) -> Iterator[Path]:
    """Step 5: the ECS pool's worker (its observer on the stack's queue) and the alerts pool's, in the image."""
    log = tmp_path_factory.mktemp("ecs-worker") / "worker.log"
    ecs_env = {k: v for k, v in exported.items() if not k.startswith("CPS_COVID_")} | {
        "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME": outputs["TaskEventsQueueName"]
    }
    alerts = f"cps-covid-alerts-worker-{free_port()}"
    alerts_env = aws_env | {"PREFECT_API_URL": prefect_api, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    flags = [x for key, value in alerts_env.items() for x in ("-e", f"{key}={value}")]
    started = docker(
        "run", "-d", "--rm", "--network", "host", "--name", alerts, *flags, image,
        "prefect", "worker", "start", "--pool", "cps-covid-alerts",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        with start_worker(ecs_env, log, pool="cps-covid-ecs", worker_type="ecs"):
            yield log
    finally:
        print(docker("logs", alerts).stdout[-3000:])
        docker("stop", "-t", "10", alerts)


def states_of(flow_run_id: UUID) -> list[str]:
    """The run's state types in order, repeats folded (the observer may propose Pending again)."""
    with get_client(sync_client=True) as client:
        states = sorted(client.read_flow_run_states(flow_run_id), key=lambda s: s.timestamp)
    names = [s.type.value for s in states]
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


def task_of(fargate: FargateStandIn, flow_run_id: UUID) -> TaskRun:
    return wait_for(
        lambda: next((r for r in fargate.runs.values() if r.flow_run_id == str(flow_run_id) and r.done.is_set()), None),
        what="the flow run's ECS task to stop",
        timeout=120,
    )


def flow_run_state(flow_run_id: UUID):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state


def alarms_about(account: Emulated, flow_run_id: UUID) -> list[dict]:
    return [
        n
        for n in account.sent_notifications()
        if n["topic_arn"] == account.alarm_topic_arn and f"Flow run id: {flow_run_id}" in n["message"]
    ]


def alert_run_for(flow_run_id: UUID):
    """The failure automation's alert run about ``flow_run_id``, once final."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="alert-failed")))
    return next(
        (r for r in runs if r.state and r.state.is_final() and r.parameters["flow_run_id"] == str(flow_run_id)),
        None,
    )


def test_deploy_puts_the_flows_on_the_ecs_pool_and_the_alert_on_its_own(deployed: str) -> None:
    with get_client(sync_client=True) as client:
        ecs = client.read_work_pool("cps-covid-ecs")
        alerts = client.read_work_pool("cps-covid-alerts")
        on = {
            name: client.read_deployment_by_name(name)
            for name in (
                "cps-covid-update/cps-covid-update",
                "cps-covid-update/cps-covid-rerun",
                "cps-vaccination-update/cps-vaccination-update",
                "cps-covid-alert/cps-covid-alert",
            )
        }
    assert (ecs.type, alerts.type) == ("ecs", "process")
    assert "work pool cps-covid-process" not in deployed  # (an earlier module's process deploy may have made it)
    alert = on.pop("cps-covid-alert/cps-covid-alert")
    assert alert.work_pool_name == "cps-covid-alerts" and alert.job_variables == {}
    assert alert.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}]
    for deployment in on.values():
        assert deployment.work_pool_name == "cps-covid-ecs"
        assert deployment.job_variables == {
            "image": "cps-covid-etl:latest",
            "family": FAMILY,
            "match_latest_revision_in_family": True,
        }


def test_a_rerun_runs_as_an_ecs_task_of_the_image(
    workers: Path, fargate: FargateStandIn, account: Emulated, outputs: dict[str, str]
) -> None:
    flow_run = run_deployment(
        "cps-covid-update/cps-covid-rerun", parameters={"as_of": "2021-09-23"}, timeout=300, poll_interval=0.5
    )

    assert flow_run.state.is_completed(), flow_run.state.message
    print(f"rerun on ECS: {(flow_run.end_time - flow_run.created).total_seconds():.1f} s created -> Completed")
    assert states_of(flow_run.id) == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    task = task_of(fargate, flow_run.id)
    assert task.statuses == ["PROVISIONING", "RUNNING", "STOPPED"] and task.exit_code == 0
    assert f"Created ECS task {task.task_arn!r}" in workers.read_text()
    # what it published, and the mail
    s3 = account.client("s3")
    assert len(s3.list_object_versions(Bucket=account.bucket, Prefix=publish_plan.PAGE_KEY)["Versions"]) == 1
    assert [n["subject"] for n in account.sent_notifications() if n["topic_arn"] == account.topic_arn] == [
        "CPS COVID update: 22 new cases (Sep. 23, 2021)"
    ]
    # the task definition is deployments/' template with the stack's ids, run with its limits
    definition = account.client("ecs").describe_task_definition(taskDefinition=task.task_definition_arn)
    registered = definition["taskDefinition"]
    (container,) = registered["containerDefinitions"]
    assert registered["family"] == FAMILY
    assert (registered["cpu"], registered["memory"]) == ("1024", "4096")
    assert registered["taskRoleArn"] == outputs["TaskRoleArn"]
    assert registered["executionRoleArn"] == outputs["ExecutionRoleArn"]
    assert registered["networkMode"] == "awsvpc" and registered["requiresCompatibilities"] == ["FARGATE"]
    assert (container["name"], container["image"]) == ("prefect", "cps-covid-etl:latest")
    assert container["logConfiguration"]["options"]["awslogs-group"] == outputs["LogGroupName"]
    assert task.docker_args[:8] == ["--network", "host", "--cpus", "1", "--memory", "4096m", "--memory-swap", "4096m"]
    assert task.docker_args[-4:] == ["cps-covid-etl:latest", "prefect", "flow-run", "execute"]
    assert f"PREFECT__FLOW_RUN_ID={flow_run.id}" in task.docker_args
    # the container's output, in the task's log stream
    prefix = container["logConfiguration"]["options"]["awslogs-stream-prefix"]
    stream = f"{prefix}/prefect/{task.task_arn.rsplit('/', 1)[-1]}"
    events = account.client("logs").get_log_events(logGroupName=outputs["LogGroupName"], logStreamName=stream)
    logged = "\n".join(e["message"] for e in events["events"])
    assert f"Flow run '{flow_run.name}' - Finished in state Completed()" in logged, logged[-3000:]


def test_a_second_run_reuses_the_task_definition(workers: Path, fargate: FargateStandIn, account: Emulated) -> None:
    flow_run = run_deployment(
        "cps-covid-update/cps-covid-rerun",
        parameters={"as_of": "2021-09-23", "dry_run": True},
        timeout=300,
        poll_interval=0.5,
    )

    assert flow_run.state.is_completed(), flow_run.state.message
    families = account.client("ecs").list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]
    assert len(families) == 1  # match_latest_revision_in_family: one revision across runs
    assert {r.task_definition_arn for r in fargate.runs.values()} == set(families)


def test_a_failing_task_ends_failed_and_its_alarm_arrives(
    workers: Path, fargate: FargateStandIn, account: Emulated, source: FeedServer
) -> None:
    flow_run = run_deployment(
        "cps-covid-update/cps-covid-rerun",
        parameters={"as_of": "2021-09-24", "source": source.url("/gone.csv")},
        timeout=300,
        poll_interval=0.5,
    )

    assert flow_run.state.is_failed(), flow_run.state
    # The flow ended the run itself: `prefect flow-run execute` exits 0 after a Failed run (non-zero is a crash)
    assert task_of(fargate, flow_run.id).exit_code == 0
    (alarm,) = wait_for(lambda: alarms_about(account, flow_run.id), what="the run's own alarm", timeout=180)
    assert alarm["subject"] == f"cps-covid-rerun {flow_run.name} Failed: HTTP 404 Not Found"
    backstop = wait_for(lambda: alert_run_for(flow_run.id), what="the automation's alert run", timeout=180)
    assert backstop.state.is_completed() and backstop.work_pool_name == "cps-covid-alerts"
    assert alarms_about(account, flow_run.id) == [alarm]  # the backstop found it sent


def test_a_killed_task_is_marked_crashed_from_its_exit_code_and_alarmed(
    workers: Path, fargate: FargateStandIn, account: Emulated, source: FeedServer
) -> None:
    """The container dies mid-run (out of memory, the task stopped): no hook can run; the worker's observer
    reads the STOPPED event from the stack's queue and marks the run Crashed; the automation alarms."""
    gate = threading.Event()
    held = Route(FEED, gate=gate)
    url = source.route("/held.csv", held)
    try:
        flow_run = run_deployment(
            "cps-covid-update/cps-covid-rerun",
            parameters={"as_of": "2021-09-23", "dry_run": True, "source": url},
            timeout=0,
        )
        assert held.arrived.wait(timeout=180), "the run never fetched"
        (task,) = [r for r in fargate.runs.values() if r.flow_run_id == str(flow_run.id)]
        assert docker("kill", task.container).returncode == 0
    finally:
        gate.set()

    assert task_of(fargate, flow_run.id).exit_code == 137
    final = wait_for(lambda: flow_run_state(flow_run.id).is_final() and flow_run_state(flow_run.id), what="final")
    assert final.is_crashed() and "non-zero exit code" in final.message, final
    (alarm,) = wait_for(lambda: alarms_about(account, flow_run.id), what="the crashed run's alarm", timeout=240)
    with get_client(sync_client=True) as client:
        name = client.read_flow_run(flow_run.id).name  # the flow named it when it started
    assert alarm["subject"].startswith(f"cps-covid-rerun {name} Crashed: The following containers stopped")
    assert "non-zero exit code: ['prefect']" in alarm["message"]
    alert = wait_for(lambda: alert_run_for(flow_run.id), what="the alert run", timeout=120)
    assert alert.state.is_completed() and alert.work_pool_name == "cps-covid-alerts"


def test_the_alarm_arrives_when_ecs_starts_nothing(workers: Path, fargate: FargateStandIn, account: Emulated) -> None:
    with fargate.refusing():
        flow_run = run_deployment(
            "cps-covid-update/cps-covid-rerun",
            parameters={"as_of": "2021-09-23", "dry_run": True},
            timeout=300,
            poll_interval=0.5,
        )
        assert flow_run.state.is_crashed(), flow_run.state
        assert "No Fargate capacity" in workers.read_text()
        (alarm,) = wait_for(lambda: alarms_about(account, flow_run.id), what="the crashed run's alarm", timeout=240)
    assert not [r for r in fargate.runs.values() if r.flow_run_id == str(flow_run.id)]
    assert alarm["subject"].startswith(f"cps-covid-rerun {flow_run.name} Crashed")
    alert = wait_for(lambda: alert_run_for(flow_run.id), what="the alert run", timeout=120)
    assert alert.state.is_completed() and alert.work_pool_name == "cps-covid-alerts"
