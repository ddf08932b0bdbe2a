"""``cps-covid deploy``: the work pools, the settings variable and a block, then ``prefect deploy``.

Prefect's own ``prefect deploy --all`` applies ``prefect.yaml``'s deployments (schedules, concurrency
limits, parameters and their schema, pull steps) and their ``triggers:``: the failure automations, which
the ``cps-covid-alert`` deployment owns, so each deploy replaces them and never duplicates them. What
Prefect cannot do stays here:

- the target: ``prefect.yaml``'s build step makes the image and needs prefect-docker and a registry.
  ``--target ecs`` takes a built image instead; ``--target process`` puts every deployment on one local
  process pool whose worker runs this checkout (``set_working_directory``); the local stack replaces a
  cron. ``prefect deploy`` gets a copy of ``prefect.yaml`` with those changes (``target_spec``).
- the work pools, before the deployments that name them: the ECS pool's template is filled with the
  account's ids from the environment (``prefect work-pool create`` takes a template file as it is), and
  only the target's pools are made;
- the ``cps_covid_settings`` variable from the ``CPS_COVID_*`` environment, the ``AwsCredentials`` block;
- deleting automations named like a trigger that no deployment owns (those of the former
  ``deployments/automations.yaml``): Prefect only replaces its own, and both would alarm;
- the report: Prefect rewrites every deployment and recreates its triggers on each deploy, so what the
  server holds is compared before and after, without ids and times; a second deploy reports no change.
  Pools, variable and block are written only when they differ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS_DIR = ROOT / "deployments"
PREFECT_FILE = ROOT / "prefect.yaml"
POOLS = {
    "ecs": ("cps-covid-ecs", "ecs", "ecs-base-job-template.json"),
    "process": ("cps-covid-process", "process", "process-base-job-template.json"),
    # the alert flow's own pool on the ECS target: it must run when ECS cannot start anything
    "alerts": ("cps-covid-alerts", "process", "process-base-job-template.json"),
}
# The pools each target creates. Locally one process pool runs everything, the alerts too.
TARGET_POOLS = {"process": ["process"], "ecs": ["ecs", "alerts"]}
ECS_ENV = {
    "cluster": "CPS_COVID_ECS_CLUSTER",
    "task_role_arn": "CPS_COVID_ECS_TASK_ROLE_ARN",
    "execution_role_arn": "CPS_COVID_ECS_EXECUTION_ROLE_ARN",
    # ECS hands the secret to each flow task (`secrets:`): no task definition or override holds its value
    "prefect_api_key_secret_arn": "CPS_COVID_ECS_PREFECT_API_KEY_SECRET_ARN",
    "prefect_api_auth_string_secret_arn": "CPS_COVID_ECS_PREFECT_API_AUTH_STRING_SECRET_ARN",
}
AWS_BLOCK = "cps-covid-aws"
BUILT_IMAGE = "{{ build-image.image }}"  # prefect.yaml's image, the output of its build step
# an empty `schedules:` in prefect.yaml clears the server's (Prefect keeps them by default, and warns)
PREFECT_DEPLOY_SETTINGS = {"PREFECT_DEPLOYMENTS_CLEAR_SCHEDULES_ON_EMPTY": "true"}
# what prefect.yaml sets on a deployment and its triggers, compared for the report
DEPLOYMENT_FIELDS = {
    "description",
    "version",
    "tags",
    "parameters",
    "entrypoint",
    "pull_steps",
    "job_variables",
    "work_pool_name",
    "concurrency_limit",
    "concurrency_options",
    "schedules",
    "parameter_openapi_schema",
    "enforce_parameter_schema",
    "paused",
}
AUTOMATION_FIELDS = {"name", "description", "enabled", "trigger", "actions", "actions_on_trigger", "actions_on_resolve"}
RENEWED = {"id", "created", "updated"}


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def note(self, kind: str, name: str, existed: bool, differs: bool) -> bool:
        label = f"{kind} {name}"
        if not existed:
            self.created.append(label)
        elif differs:
            self.updated.append(label)
        else:
            self.unchanged.append(label)
        return not existed or differs

    def text(self) -> str:
        lines = [
            f"{title}: {', '.join(items) or 'none'}"
            for title, items in (("created", self.created), ("updated", self.updated), ("unchanged", self.unchanged))
        ]
        if self.removed:
            lines.append(f"removed: {', '.join(self.removed)}")
        return "\n".join(lines)


def pool_template(pool: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The checked-in base job template of ``POOLS[pool]``, with the account's ids filled in for ECS."""
    template = json.loads((DEPLOYMENTS_DIR / POOLS[pool][2]).read_text())
    if pool == "ecs":
        props = template["variables"]["properties"]
        for variable, name in ECS_ENV.items():
            if env.get(name):
                props[variable]["default"] = env[name]
        # prefect-aws wraps this in awsvpcConfiguration itself, and needs the VPC of the subnets with it;
        # left empty, the worker uses the default VPC's subnets
        network = {
            key: [s.strip() for s in env[name].split(",") if s.strip()]
            for key, name in (("subnets", "CPS_COVID_ECS_SUBNETS"), ("securityGroups", "CPS_COVID_ECS_SECURITY_GROUPS"))
            if env.get(name)
        }
        if network:
            if not env.get("CPS_COVID_ECS_VPC_ID"):
                raise ValueError("CPS_COVID_ECS_SUBNETS/SECURITY_GROUPS need CPS_COVID_ECS_VPC_ID: the VPC they are in")
            props["network_configuration"]["default"] = network | {"assignPublicIp": "ENABLED"}
            props["vpc_id"]["default"] = env["CPS_COVID_ECS_VPC_ID"]
        if env.get("CPS_COVID_ECS_LOG_GROUP"):
            props["cloudwatch_logs_options"]["default"]["awslogs-group"] = env["CPS_COVID_ECS_LOG_GROUP"]
    return template


def apply_pools(client: Any, target: str, env: Mapping[str, str], changes: Changes) -> None:
    """The target's pools only: an ECS pool on a server without AWS would show red to its operator."""
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    for pool in TARGET_POOLS[target]:
        name, pool_type, _ = POOLS[pool]
        template = pool_template(pool, env)
        try:
            current = client.read_work_pool(name)
        except ObjectNotFound:
            current = None
        if not changes.note(
            "work pool", name, current is not None, bool(current) and current.base_job_template != template
        ):
            continue
        if current is None:  # overwrite: the stack's worker may create it (default template) meanwhile
            client.create_work_pool(
                WorkPoolCreate(name=name, type=pool_type, base_job_template=template), overwrite=True
            )
        else:
            client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))


def settings_values(env: Mapping[str, str]) -> dict[str, str]:
    """The flow's settings found in the environment, for the ``cps_covid_settings`` variable."""
    from cps_covid.settings import ENV_PREFIX, Settings

    names = set(Settings.model_fields)
    return {
        k[len(ENV_PREFIX) :].lower(): v
        for k, v in sorted(env.items())
        if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :].lower() in names
    }


def apply_variable(client: Any, values: dict[str, str], changes: Changes) -> None:
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate

    from cps_covid.settings import PREFECT_VARIABLE

    if not values:
        return
    current = client.read_variable_by_name(PREFECT_VARIABLE)
    if not changes.note("variable", PREFECT_VARIABLE, current is not None, bool(current) and current.value != values):
        return
    if current is None:
        client.create_variable(VariableCreate(name=PREFECT_VARIABLE, value=values))
    else:
        client.update_variable(VariableUpdate(name=PREFECT_VARIABLE, value=values))


def apply_blocks(env: Mapping[str, str], changes: Changes) -> None:
    """An ``AwsCredentials`` block with the region only: on ECS the task role provides the keys."""
    from prefect_aws import AwsCredentials

    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    try:
        current: Any = AwsCredentials.load(AWS_BLOCK)
    except ValueError:
        current = None
    if changes.note("block", AWS_BLOCK, current is not None, bool(current) and current.region_name != region):
        AwsCredentials(region_name=region).save(AWS_BLOCK, overwrite=True)


def target_spec(
    target: str,
    image: str | None,
    code_dir: Path,
    crons: Mapping[str, str] | None = None,
    timezone: str | None = None,
    paused: Iterable[str] = (),
    windows: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``prefect.yaml`` as ``prefect deploy`` applies it to the target, without build or push steps.

    On ECS each deployment keeps its pool from ``prefect.yaml`` (the flows on the ECS pool, the alert on its
    own process pool, whose worker runs in the image, the code at ``/app``) and the given image replaces the
    build step's. The process target puts every deployment on the one local process pool, the code in
    ``code_dir``. ``crons`` replaces a deployment's schedules' cron (the local stack replays a day every few
    minutes). ``timezone`` (the settings') replaces every schedule's, so a cron run fires on the clock the flow
    resolves its day on (``clock.update_day``). ``paused``: deployments whose schedules are made inactive (their
    triggers and on-demand runs still work). ``windows`` replaces the ``within`` of a deployment's triggers (the
    local stack's update trigger, replayed as fast as its days)."""
    spec = yaml.safe_load(PREFECT_FILE.read_text())
    out: dict[str, Any] = {k: v for k, v in spec.items() if k not in ("definitions", "build", "push", "deployments")}
    if target == "process":
        out["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": str(code_dir)}}]
    out["deployments"] = []
    for item in spec["deployments"]:
        if crons and item["name"] in crons:
            item = item | {"schedules": [s | {"cron": crons[item["name"]]} for s in item["schedules"]]}
        if windows and item["name"] in windows:
            item = item | {"triggers": [t | {"within": windows[item["name"]]} for t in item["triggers"]]}
        if item["name"] in paused:
            item = item | {"schedules": [s | {"active": False} for s in item["schedules"]]}
        if timezone and item.get("schedules"):
            item = item | {"schedules": [s | {"timezone": timezone} for s in item["schedules"]]}
        if target == "ecs":
            variables = item["work_pool"].get("job_variables", {})
            pool = {
                "name": item["work_pool"]["name"],
                "job_variables": {k: (image if v == BUILT_IMAGE else v) for k, v in variables.items()},
            }
        else:
            pool = {"name": POOLS["process"][0]}
        out["deployments"].append(item | {"work_pool": pool})
    return out


def content_of(value: Any) -> Any:
    """``value`` without what Prefect renews on each deploy (ids, times); sets (JSON lists) in one order."""
    if isinstance(value, dict):
        return {k: content_of(v) for k, v in value.items() if k not in RENEWED}
    if isinstance(value, list):
        items = [content_of(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


def held(client: Any, full_name: str) -> Any:
    """What the server holds of a deployment and the automations related to it (its triggers), or None."""
    from prefect.exceptions import ObjectNotFound

    try:
        deployment = client.read_deployment_by_name(full_name)
    except ObjectNotFound:
        return None
    automations = client.read_resource_related_automations(f"prefect.deployment.{deployment.id}")
    return content_of(
        {
            "deployment": deployment.model_dump(mode="json", include=DEPLOYMENT_FIELDS),
            "automations": sorted(
                (a.model_dump(mode="json", include=AUTOMATION_FIELDS) for a in automations), key=json.dumps
            ),
        }
    )


def prefect_deploy(spec: dict[str, Any], code_dir: Path, env: Mapping[str, str]) -> None:
    """``prefect deploy --all`` of ``spec`` from ``code_dir`` (the entrypoints are relative to it)."""
    prefect = Path(sys.executable).with_name("prefect")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "prefect.yaml"
        file.write_text(yaml.safe_dump(spec, sort_keys=False))
        done = subprocess.run(
            [str(prefect), "--no-prompt", "deploy", "--all", "--prefect-file", str(file)],
            cwd=code_dir,
            env=dict(env),
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}")


def apply_deployments(
    client: Any, spec: dict[str, Any], code_dir: Path, env: Mapping[str, str], changes: Changes
) -> None:
    """``prefect deploy`` of ``spec``, reported by comparing what the server holds before and after.

    Prefect rewrites each deployment and replaces the automations it owns (its ``triggers:``) on every
    deploy. An automation named like a trigger that it did not replace is not a deployment's own (one
    left by the ``deployments/automations.yaml`` of earlier versions, or made by hand): it would alarm
    a second time, so it is deleted."""
    from prefect.flows import load_flow_arguments_from_entrypoint

    names = [
        f"{load_flow_arguments_from_entrypoint(str(code_dir / d['entrypoint']), {'name'})['name']}/{d['name']}"
        for d in spec["deployments"]
    ]
    triggers = [t["name"] for d in spec["deployments"] for t in d.get("triggers") or []]
    before = {name: held(client, name) for name in names}
    others = {a.id for name in triggers for a in client.read_automations_by_name(name)}
    prefect_deploy(spec, code_dir, {**env, "PREFECT_API_URL": str(client.api_url), **PREFECT_DEPLOY_SETTINGS})
    for automation in (a for name in triggers for a in client.read_automations_by_name(name)):
        if automation.id in others:
            client.delete_automation(automation.id)
            changes.removed.append(f"automation {automation.name} (not a deployment's own)")
    for name in names:
        after = held(client, name)
        changes.note("deployment", name, before[name] is not None, after != before[name])


def deploy(
    target: str = "process",
    image: str | None = None,
    code_dir: Path = ROOT,
    env: Mapping[str, str] | None = None,
    crons: Mapping[str, str] | None = None,
    stack: str | None = None,
    paused: Iterable[str] = (),
    windows: Mapping[str, float] | None = None,
) -> Changes:
    """``stack``: the CloudFormation stack's outputs fill in what the environment does not set; ``paused``:
    deployments deployed with their schedules inactive; ``windows``: their triggers' ``within`` replaced."""
    from prefect.client.orchestration import get_client

    from cps_covid.settings import DEFAULT_TIMEZONE

    env = os.environ if env is None else env
    if stack:
        from cps_covid.systems.cloudformation import stack_environment, stack_outputs

        env = stack_environment(stack_outputs(stack)) | dict(env)
    if target == "ecs" and not image:
        raise ValueError("--target ecs needs --image (the pushed image of `make image`)")
    changes = Changes()
    with get_client(sync_client=True) as client:
        apply_pools(client, target, env, changes)
        values = settings_values(env)
        apply_variable(client, values, changes)
        apply_blocks(env, changes)
        timezone = values.get("timezone") or DEFAULT_TIMEZONE
        spec = target_spec(target, image, code_dir, crons, timezone, paused, windows)
        apply_deployments(client, spec, code_dir, env, changes)
    return changes
