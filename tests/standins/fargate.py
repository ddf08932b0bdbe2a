"""A local ECS for the real prefect-aws worker: moto's ECS on loopback, and a runner that plays Fargate.

moto registers task definitions and records ``RunTask``, but it runs nothing: a task
sits in RUNNING with exit code 0 forever, and no "ECS Task State Change" event
reaches EventBridge. ``FargateStandIn`` fills exactly that gap, in the test process
beside the ``ThreadedMotoServer`` whose backend it reads:

- it sees each task ``RunTask`` created and moves it PROVISIONING -> RUNNING -> STOPPED;
- it starts the task definition's image with ``docker run``: the container's command
  and environment overrides, the definition's environment, cpu and memory as limits
  (``--cpus``, ``--memory``), and what Fargate itself gives a task (its region, and the
  task role's credentials, here the emulator's and its endpoint);
- STOPPED carries the container's real exit code, ``EssentialContainerExited``;
- with an ``awslogs`` log configuration the container's output goes to the task's
  stream ``<prefix>/<container>/<task id>`` in its group, once the container exits;
- each change is put on EventBridge as ``aws.ecs`` "ECS Task State Change", so the
  stack's rule carries it to the worker's observer queue, as on AWS;
- a container definition's ``secrets`` are read from Secrets Manager (as the task's
  execution role would) and given to the container as environment; the values are
  passed to ``docker run`` through its own environment, never on its command line;
- an ECS service (moto records it, but starts no task) is kept at its desired count:
  a task of its definition is started, and started again when it stops, as ECS's
  service scheduler does (``TaskRun.service`` names it);
- ``refusing()`` makes every ``RunTask`` fail, as when Fargate has no capacity.

It does not emulate: pulling from a registry (the image must be local), networking
(``--network host``: the task reaches loopback), sidecars or several containers per
task, health checks, deployments of a changed service, ``StopTask`` of a running
container, capacity providers, or live log streaming (``docker logs`` reads a running
task's output).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.ecs.exceptions import EcsClientException

from local.aws_emulator import REGION, Emulated

ACCOUNT = "123456789012"  # moto's default account
POLL_SECONDS = 0.2


@dataclass
class TaskRun:
    """What the runner did for one ECS task."""

    task_arn: str
    task_definition_arn: str
    flow_run_id: str | None = None
    service: str | None = None
    container: str = ""
    docker_args: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # the names given from Secrets Manager
    statuses: list[str] = field(default_factory=list)
    exit_code: int | None = None
    output: str = ""
    done: threading.Event = field(default_factory=threading.Event)


class RunTaskRefused(EcsClientException):
    """Raised inside moto's RunTask while the stand-in refuses (an ECS client error to the caller)."""


class FargateStandIn:
    """Runs moto's ECS tasks as local containers; see the module docstring for what it leaves out."""

    def __init__(self, aws: Emulated, task_environment: Mapping[str, str]) -> None:
        self.task_environment = dict(task_environment)
        self.runs: dict[str, TaskRun] = {}
        self._events = aws.client("events")  # boto3 clients are thread-safe: one each for all the tasks
        self._logs = aws.client("logs")
        self._secrets = aws.client("secretsmanager")
        self._service_tasks: dict[str, list[str]] = {}  # service -> the task ARNs started for it
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._refusing = False
        self._undo: list[Any] = []

    @property
    def backend(self):
        from moto.ecs.models import ecs_backends

        return ecs_backends[ACCOUNT][REGION]

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FargateStandIn:
        self._patch_moto()
        watcher = threading.Thread(target=self._watch, name="fargate-stand-in", daemon=True)
        watcher.start()
        self._threads.append(watcher)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for run in list(self.runs.values()):  # a task still running (a cron run, say) is stopped with us
            if run.container and not run.done.is_set():
                subprocess.run(["docker", "kill", run.container], capture_output=True)
        for thread in self._threads:
            thread.join(timeout=120)
        for undo in reversed(self._undo):
            undo()

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Every RunTask fails while inside."""
        self._refusing = True
        try:
            yield
        finally:
            self._refusing = False

    def _patch_moto(self) -> None:
        """Two gaps of moto's ECS: a FARGATE task with task-level memory only, and state advancing on describe."""
        from moto.ecs.models import EC2ContainerServiceBackend
        from moto.moto_api import state_manager

        original_requirements = EC2ContainerServiceBackend._calculate_task_resource_requirements
        original_run_task = EC2ContainerServiceBackend.run_task
        stand_in = self

        def requirements(task_definition):
            for container in task_definition.container_definitions:
                container.setdefault("memory", 0)
            return original_requirements(task_definition)

        def run_task(backend, *args, **kwargs):
            if stand_in._refusing:
                raise RunTaskRefused("No Fargate capacity is available in the requested Availability Zones")
            return original_run_task(backend, *args, **kwargs)

        EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(requirements)
        EC2ContainerServiceBackend.run_task = run_task
        # the runner moves each task itself; describe_tasks must not
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})

        def undo() -> None:
            EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(original_requirements)
            EC2ContainerServiceBackend.run_task = original_run_task
            state_manager.unset_transition("ecs::task")

        self._undo.append(undo)

    # --- the runner ------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._schedule_services()
            for by_arn in list(self.backend.tasks.values()):
                for arn, task in list(by_arn.items()):
                    if arn not in self.runs:
                        tags = {tag["key"]: tag["value"] for tag in task.tags}
                        service = next((s for s, arns in self._service_tasks.items() if arn in arns), None)
                        run = self.runs[arn] = TaskRun(
                            arn, task.task_definition_arn, tags.get("prefect.io/flow-run-id"), service
                        )
                        thread = threading.Thread(target=self._run, args=(task, run), name=f"task-{task.id}")
                        thread.start()
                        self._threads.append(thread)
            self._stop.wait(POLL_SECONDS)

    def _schedule_services(self) -> None:
        """ECS's service scheduler: each active service keeps its desired count of tasks running."""
        for service in list(self.backend.services.values()):
            if service.status != "ACTIVE" or not service.task_definition:
                continue
            started = self._service_tasks.setdefault(service.name, [])
            alive = [arn for arn in started if not (arn in self.runs and self.runs[arn].done.is_set())]
            for _ in range(service.desired_count - len(alive)):
                try:
                    (task,) = self.backend.run_task(
                        service.cluster_name,
                        service.task_definition,
                        count=1,
                        overrides=None,
                        started_by=f"ecs-svc/{service.name}",
                        tags=None,
                        launch_type="FARGATE",
                    )
                except RunTaskRefused:  # no capacity: ECS tries again later
                    break
                started.append(task.task_arn)
            service.running_count = service.desired_count

    def _run(self, task: Any, run: TaskRun) -> None:
        definition = self.backend.describe_task_definition(task.task_definition_arn)
        self._move(task, run, "PROVISIONING")
        (container_definition,) = definition.container_definitions  # one container per task, as ours
        name = container_definition["name"]
        override = next(
            (o for o in task.overrides.get("containerOverrides", []) if o.get("name") == name),
            {},
        )
        secrets = self._secret_values(container_definition)
        run.secrets = sorted(secrets)
        run.docker_args = self._docker_args(task, definition, container_definition, override, secrets)
        container = run.container = f"ecs-{task.id}"
        self._move(task, run, "RUNNING")
        try:
            done = subprocess.run(
                ["docker", "run", "--name", container, *run.docker_args],
                capture_output=True,
                text=True,
                timeout=None if run.service else 900,  # a service's task runs until it is stopped
                env={**os.environ, **secrets},  # `-e NAME` takes the value from here: not on the command line
            )
            run.exit_code = done.returncode
            run.output = done.stdout + done.stderr
        finally:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        self._send_logs(task, container_definition, name, run.output)
        task.containers[0].exitCode = run.exit_code
        task.containers[0].last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_reason = "Essential container in task exited"
        self._move(task, run, "STOPPED")
        run.done.set()

    def _secret_values(self, container: dict[str, Any]) -> dict[str, str]:
        """What the execution role reads for the container's ``secrets`` (a whole secret's string)."""
        return {
            s["name"]: self._secrets.get_secret_value(SecretId=s["valueFrom"])["SecretString"]
            for s in container.get("secrets") or []
        }

    def _docker_args(
        self,
        task: Any,
        definition: Any,
        container: dict[str, Any],
        override: dict[str, Any],
        secrets: Mapping[str, str],
    ) -> list[str]:
        env = {e["name"]: e["value"] for e in container.get("environment") or []}
        env |= {e["name"]: e["value"] for e in override.get("environment") or []}
        env |= self.task_environment | {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
        cpu = int(task.overrides.get("cpu") or definition.cpu or 1024)
        memory = int(task.overrides.get("memory") or definition.memory or 2048)
        command = override.get("command") or container.get("command") or []
        flags = [x for key, value in sorted(env.items()) for x in ("-e", f"{key}={value}")]
        flags += [x for name in sorted(secrets) for x in ("-e", name)]
        return [
            "--network",
            "host",
            "--cpus",
            f"{cpu / 1024:g}",
            "--memory",
            f"{memory}m",
            "--memory-swap",  # Fargate has no swap
            f"{memory}m",
            *flags,
            container["image"],
            *command,
        ]

    def _move(self, task: Any, run: TaskRun, status: str) -> None:
        task.last_status = status
        run.statuses.append(status)
        container = task.containers[0]
        detail = {
            "taskArn": task.task_arn,
            "clusterArn": task.cluster_arn,
            "taskDefinitionArn": task.task_definition_arn,
            "lastStatus": status,
            "desiredStatus": task.desired_status,
            "launchType": task.launch_type,
            "containers": [
                {
                    "containerArn": container.container_arn,
                    "name": container.name,
                    "lastStatus": status,
                    **({"exitCode": run.exit_code} if run.exit_code is not None else {}),
                }
            ],
        }
        if status == "STOPPED":
            detail |= {"stopCode": "EssentialContainerExited", "stoppedReason": task.stopped_reason}
        self._events.put_events(
            Entries=[{"Source": "aws.ecs", "DetailType": "ECS Task State Change", "Detail": json.dumps(detail)}]
        )

    def _send_logs(self, task: Any, container: dict[str, Any], name: str, output: str) -> None:
        config = container.get("logConfiguration") or {}
        if config.get("logDriver") != "awslogs":
            return
        options = config.get("options") or {}
        group = options["awslogs-group"]
        stream = f"{options['awslogs-stream-prefix']}/{name}/{task.id}"
        logs = self._logs
        if options.get("awslogs-create-group") == "true":
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        lines = output.splitlines() or [""]
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now, "message": line} for line in lines],
        )
