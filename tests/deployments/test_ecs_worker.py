"""The ECS path: the stack's own workers run the flow as Fargate tasks of our image.

The steps are docs/deploying.md's five, on loopback: the Prefect credential put in
(moto's) Secrets Manager, the image (``make image``), the stack from
``deployments/cloudformation.yaml`` created on the moto server with the history in
its bucket, ``cps-covid deploy --target ecs --stack``, then runs watched through the
API. The Prefect server here answers only with its auth string, so every worker and
flow task that reaches it got the secret the way ECS hands it over. What AWS would do
with the services and tasks (start the containers, keep a service's task running,
report a task's state) ``FargateStandIn`` does; see ``standins/fargate.py`` for what
it leaves out.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.error
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
from local.prefect_server import prefect_server

ROOT = Path(__file__).resolve().parents[2]
# moto's CloudFormation skips what it cannot create (CloudFront, a CloudWatch alarm, bucket and queue policies), loudly
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")
STACK = "cps-covid"
FAMILY = "cps-covid-update"
FEED = (ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()
CREDENTIAL = "PREFECT_API_AUTH_STRING"  # a self-hosted server's; Prefect Cloud's would be PREFECT_API_KEY
WORKER_SERVICES = ("cps-covid-ecs-worker", "cps-covid-alerts-worker")


@pytest.fixture(scope="module")
def auth_string() -> str:
    return f"cps-covid:{secrets.token_urlsafe(24)}"


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory, auth_string: str) -> Iterator[str]:
    """A Prefect server that answers only with the auth string (this module's, not the session's open one)."""
    import prefect.context
    import prefect.settings
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    home = tmp_path_factory.mktemp("prefect-secured")
    with (
        prefect_server(home, settings={"PREFECT_SERVER_API_AUTH_STRING": auth_string}) as api_url,
        prefect.settings.temporary_settings(
            updates={prefect.settings.PREFECT_API_URL: api_url, prefect.settings.PREFECT_API_AUTH_STRING: auth_string}
        ),
        prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()),
    ):
        yield api_url
        APILogWorker.drain_all()
        EventsWorker.drain_all()


@pytest.fixture(scope="module")
def credential_arn(moto_endpoint: str, auth_string: str) -> str:
    """Step 1: the credential in Secrets Manager, on a fresh moto account."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    probe = Emulated(moto_endpoint, "", "", "")
    return probe.client("secretsmanager").create_secret(Name="cps-covid/prefect", SecretString=auth_string)["ARN"]


@pytest.fixture(scope="module")
def outputs(moto_endpoint: str, image: str, prefect_api: str, credential_arn: str) -> dict[str, str]:
    """Steps 2 and 3: the image, and the stack with it (the workers run it); the served history in its bucket."""
    probe = Emulated(moto_endpoint, "", "", "")
    ec2 = probe.client("ec2")
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    subnets = [
        s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    ]
    parameters = {
        "BucketName": "cpscovid-ecs",
        "Image": image,
        "PrefectApiUrl": prefect_api,
        "PrefectCredentialSecretArn": credential_arn,
        "PrefectCredential": CREDENTIAL,
        "VpcId": vpc["VpcId"],
        "SubnetIds": ",".join(subnets[:2]),
    }
    cfn = probe.client("cloudformation")
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=(ROOT / "deployments/cloudformation.yaml").read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
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
def fargate(outputs: dict[str, str], moto_endpoint: str, aws_env: dict[str, str]) -> Iterator[FargateStandIn]:
    """What AWS does with the stack's services and the worker's tasks: the task role's keys (here the
    emulator's) and its region in each container; the workers poll every second (Prefect's default: 10)."""
    quick = {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    with FargateStandIn(Emulated(moto_endpoint, "", "", ""), task_environment=aws_env | quick) as stand_in:
        try:
            yield stand_in
        finally:
            for run in stand_in.runs.values():
                if run.service and run.container:
                    print(f"--- {run.service} ({run.task_arn}):", docker("logs", run.container).stdout[-3000:])


class ServiceLog:
    """A service's running task's output (``docker logs``: what CloudWatch would show while it runs)."""

    def __init__(self, fargate: FargateStandIn, service: str) -> None:
        self.fargate, self.service = fargate, service

    def read_text(self) -> str:
        runs = [r for r in self.fargate.runs.values() if r.service == self.service and r.container]
        logs = [docker("logs", r.container) for r in runs]
        return "\n".join(done.stdout + done.stderr for done in logs)


def online_workers(pool: str) -> list[str]:
    from prefect.client.schemas.objects import WorkerStatus

    with get_client(sync_client=True) as client:
        try:
            found = client.read_workers_for_work_pool(pool)
        except Exception:  # the pool is made by the first worker that starts, or by the deploy
            return []
    return [w.name for w in found if w.status == WorkerStatus.ONLINE]


@pytest.fixture(scope="module")
def workers(fargate: FargateStandIn) -> ServiceLog:
    """The stack's two services: ECS started a task of each, and each worker is online in its pool."""
    for pool in ("cps-covid-ecs", "cps-covid-alerts"):
        wait_for(lambda pool=pool: online_workers(pool), what=f"a worker online in {pool}", timeout=240)
    return ServiceLog(fargate, "cps-covid-ecs-worker")


@pytest.fixture(scope="module")
def exported(source: FeedServer, aws_env: dict[str, str], prefect_api: str, auth_string: str) -> dict[str, str]:
    """The operator's shell: their Prefect profile and AWS account; the feed and the distribution are this
    test's (the district's URL is the default; moto's stack could not make the distribution)."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("CPS_COVID_", "AWS_", "PREFECT_"))}
    return (
        plain
        | aws_env
        | {
            "PREFECT_API_URL": prefect_api,
            "PREFECT_API_AUTH_STRING": auth_string,
            "CPS_COVID_SOURCE_URL": source.url("/feed.csv"),
            "CPS_COVID_FETCH_BACKOFF_SECONDS": "0.05",
        }
    )


@pytest.fixture(scope="module")
def deployed(image: str, exported: dict[str, str], outputs: dict[str, str], workers: ServiceLog) -> str:
    """Step 4: ``cps-covid deploy --target ecs --image IMAGE --stack cps-covid``, what ``make deploy`` runs."""
    cli = Path(sys.executable).with_name("cps-covid")
    done = subprocess.run(
        [str(cli), "deploy", "--target", "ecs", "--image", image, "--stack", STACK, "--paused", "cps-covid-watch"],
        env=exported | {"CPS_COVID_DISTRIBUTION_ID": outputs["DistributionId"]},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


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


def test_the_server_refuses_a_caller_without_the_credential(prefect_api: str) -> None:
    """So every run below that completes was orchestrated by workers and tasks that got the secret."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{prefect_api}/work_pools/cps-covid-ecs", timeout=10)
    assert refused.value.code == 401


def test_the_stacks_services_run_both_workers_with_the_credential_from_secrets_manager(
    workers: ServiceLog, fargate: FargateStandIn, account: Emulated, credential_arn: str
) -> None:
    ecs = account.client("ecs")
    for service in WORKER_SERVICES:
        (run,) = [r for r in fargate.runs.values() if r.service == service]
        assert run.statuses[:2] == ["PROVISIONING", "RUNNING"] and not run.done.is_set()
        assert run.secrets == [CREDENTIAL]
        (container,) = ecs.describe_task_definition(taskDefinition=run.task_definition_arn)["taskDefinition"][
            "containerDefinitions"
        ]
        assert container["secrets"] == [{"name": CREDENTIAL, "valueFrom": credential_arn}]
        assert CREDENTIAL not in {e["name"] for e in container["environment"]}
    assert online_workers("cps-covid-ecs") and online_workers("cps-covid-alerts")


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
    workers: ServiceLog, fargate: FargateStandIn, account: Emulated, outputs: dict[str, str]
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
    # the credential: a secret of the task definition (prefect_api_auth_string_secret_arn), read by ECS
    assert container["secrets"] == [{"name": CREDENTIAL, "valueFrom": outputs["PrefectApiAuthStringSecretArn"]}]
    assert task.secrets == [CREDENTIAL]
    # the container's output, in the task's log stream
    prefix = container["logConfiguration"]["options"]["awslogs-stream-prefix"]
    stream = f"{prefix}/prefect/{task.task_arn.rsplit('/', 1)[-1]}"
    events = account.client("logs").get_log_events(logGroupName=outputs["LogGroupName"], logStreamName=stream)
    logged = "\n".join(e["message"] for e in events["events"])
    assert f"Flow run '{flow_run.name}' - Finished in state Completed()" in logged, logged[-3000:]


def test_a_second_run_reuses_the_task_definition(
    workers: ServiceLog, fargate: FargateStandIn, account: Emulated
) -> None:
    flow_run = run_deployment(
        "cps-covid-update/cps-covid-rerun",
        parameters={"as_of": "2021-09-23", "dry_run": True},
        timeout=300,
        poll_interval=0.5,
    )

    assert flow_run.state.is_completed(), flow_run.state.message
    families = account.client("ecs").list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]
    assert len(families) == 1  # match_latest_revision_in_family: one revision across runs
    assert {r.task_definition_arn for r in fargate.runs.values() if r.flow_run_id} == set(families)


def test_a_failing_task_ends_failed_and_its_alarm_arrives(
    workers: ServiceLog, fargate: FargateStandIn, account: Emulated, source: FeedServer
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
    workers: ServiceLog, fargate: FargateStandIn, account: Emulated, source: FeedServer
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


def test_the_alarm_arrives_when_ecs_starts_nothing(
    workers: ServiceLog, fargate: FargateStandIn, account: Emulated
) -> None:
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


def test_no_task_definition_override_deployment_or_variable_holds_the_credential(
    workers: ServiceLog, fargate: FargateStandIn, account: Emulated, auth_string: str
) -> None:
    """Last in the module: every task definition registered and every task run by then, workers' and flows'."""
    ecs = account.client("ecs")
    definitions = [
        ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        for arn in ecs.list_task_definitions()["taskDefinitionArns"]
    ]
    assert {d["family"] for d in definitions} >= {FAMILY, "cps-covid-ecs-worker", "cps-covid-alerts-worker"}
    runs = [r for r in fargate.runs.values() if r.container]
    assert sum(1 for r in runs if r.flow_run_id) >= 4 and {r.service for r in runs} >= set(WORKER_SERVICES)
    (cluster,) = ecs.list_clusters()["clusterArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=[r.task_arn for r in runs])["tasks"]
    assert len(tasks) == len(runs)
    # where the worker puts a flow run's environment, and where the credential would be without the secret
    assert any("PREFECT__FLOW_RUN_ID" in json.dumps(t.get("overrides")) for t in tasks)
    with get_client(sync_client=True) as client:
        prefect_held = {
            "deployments": [d.model_dump(mode="json") for d in client.read_deployments()],
            "work pools": [p.model_dump(mode="json") for p in client.read_work_pools()],
            "variables": [v.model_dump(mode="json") for v in client.read_variables()],
            "blocks": [b.model_dump(mode="json") for b in client.read_block_documents(include_secrets=True)],
        }
    held = {
        "task definitions": definitions,
        "task overrides": [t.get("overrides", {}) for t in tasks],
        "docker run command lines": [r.docker_args for r in runs],
        **prefect_held,
    }
    for what, found in held.items():
        assert auth_string not in json.dumps(found, default=str), f"the credential's value is in the {what}"
