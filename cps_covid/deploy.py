"""``cps-covid deploy``: work pools, the settings variable, blocks, deployments and automations.

Everything is read from the repository (``prefect.yaml`` and ``deployments/``)
and applied to the Prefect API in ``PREFECT_API_URL``. Each object is compared
with what the server holds and written only when it differs, so running the
command twice changes nothing. ``--target process`` puts the same deployments
on a local process work pool (no AWS needed); ``--target ecs`` on the ECS pool.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
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
}
AWS_BLOCK = "cps-covid-aws"


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

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
        if current is None:
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type, base_job_template=template))
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


def deployment_specs(
    target: str, image: str | None, code_dir: Path, crons: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """``prefect.yaml``'s deployments, put on the target's pools; ``crons`` replaces a deployment's schedule's cron
    (the local stack replays a day every few minutes).

    On ECS each deployment keeps its pool from ``prefect.yaml``: the flows on the ECS pool, the alert on
    its own process pool, whose worker runs in the image (the code at ``/app``). The process target puts
    every deployment on the one local process pool, the code in ``code_dir``."""
    by_name = {name: pool for pool, (name, _, _) in POOLS.items()}
    spec = yaml.safe_load(PREFECT_FILE.read_text())
    out = []
    for item in spec["deployments"]:
        item = copy.deepcopy(item)
        if crons and item["name"] in crons:
            item["schedules"] = [s | {"cron": crons[item["name"]]} for s in item["schedules"]]
        pool = item.pop("work_pool")
        if target == "ecs":
            variables = {
                k: (image if v == "{{ build-image.image }}" else v) for k, v in pool.get("job_variables", {}).items()
            }
            item["job_variables"] = {k: v for k, v in variables.items() if v is not None}
            item["pull_steps"] = spec["pull"]
            item["work_pool_name"] = POOLS[by_name[pool["name"]]][0]
        else:
            item["job_variables"] = {}
            item["pull_steps"] = [{"prefect.deployments.steps.set_working_directory": {"directory": str(code_dir)}}]
            item["work_pool_name"] = POOLS["process"][0]
        out.append(item)
    return out


def _schedules(item: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(s["cron"], s.get("timezone", "UTC"), s.get("active", True)) for s in item.get("schedules") or []]


def apply_deployments(
    client: Any,
    target: str,
    image: str | None,
    code_dir: Path,
    changes: Changes,
    crons: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Create or update each deployment; returns ``flow/deployment`` -> id."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.exceptions import ObjectNotFound
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    ids = {}
    for item in deployment_specs(target, image, code_dir, crons):
        flow: Any = load_flow_from_entrypoint(str(code_dir / item["entrypoint"]))
        full_name = f"{flow.name}/{item['name']}"
        limit = item.get("concurrency_limit") or {}
        desired = {
            "description": item.get("description"),
            "tags": sorted(item.get("tags", [])),
            "parameters": item.get("parameters") or {},
            "entrypoint": item["entrypoint"],
            "pull_steps": item["pull_steps"],
            "job_variables": item["job_variables"],
            "work_pool_name": item["work_pool_name"],
            "concurrency": (limit.get("limit"), limit.get("collision_strategy")),
            "schedules": sorted(_schedules(item)),
        }
        try:
            current = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            current = None
        if current is not None:
            held = {
                "description": current.description,
                "tags": sorted(current.tags),
                "parameters": current.parameters,
                "entrypoint": current.entrypoint,
                "pull_steps": current.pull_steps,
                "job_variables": current.job_variables,
                "work_pool_name": current.work_pool_name,
                "concurrency": (
                    current.global_concurrency_limit.limit if current.global_concurrency_limit else None,
                    current.concurrency_options.collision_strategy.value if current.concurrency_options else None,
                ),
                "schedules": sorted((s.schedule.cron, s.schedule.timezone, s.active) for s in current.schedules),
            }
        if not changes.note("deployment", full_name, current is not None, current is not None and held != desired):
            ids[full_name] = current.id
            continue
        flow_id = client.create_flow_from_name(flow.name)
        ids[full_name] = client.create_deployment(
            flow_id=flow_id,
            name=item["name"],
            description=item.get("description"),
            tags=item.get("tags", []),
            parameters=desired["parameters"],
            entrypoint=item["entrypoint"],
            path=".",
            pull_steps=item["pull_steps"],
            job_variables=item["job_variables"],
            work_pool_name=item["work_pool_name"],
            concurrency_limit=limit.get("limit"),
            concurrency_options=ConcurrencyOptions(
                collision_strategy=ConcurrencyLimitStrategy(limit["collision_strategy"])
            )
            if limit.get("collision_strategy")
            else None,
            schedules=[
                DeploymentScheduleCreate(schedule=CronSchedule(cron=cron, timezone=tz), active=active)
                for cron, tz, active in _schedules(item)
            ],
            parameter_openapi_schema=parameter_schema_from_entrypoint(str(code_dir / item["entrypoint"])).model_dump(),
            enforce_parameter_schema=True,
        )
    return ids


def automation_specs(deployment_ids: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``deployments/automations.yaml`` with deployment names resolved to ids."""
    out = []
    for item in yaml.safe_load((DEPLOYMENTS_DIR / "automations.yaml").read_text()):
        item = copy.deepcopy(item)
        related = item["trigger"]["match_related"]
        related["prefect.resource.id"] = [f"prefect.deployment.{deployment_ids[n]}" for n in related.pop("deployments")]
        for action in item["actions"]:
            if "deployment" in action:
                action["source"] = "selected"
                action["deployment_id"] = str(deployment_ids[action.pop("deployment")])
        out.append(item)
    return out


def apply_automations(client: Any, deployment_ids: Mapping[str, Any], changes: Changes) -> None:
    from prefect.events.schemas.automations import AutomationCore

    for spec in automation_specs(deployment_ids):
        desired = AutomationCore.model_validate(spec)
        existing = client.read_automations_by_name(desired.name)
        current: Any = existing[0] if existing else None
        keys = {"description", "enabled", "trigger", "actions", "actions_on_trigger", "actions_on_resolve"}
        differs = bool(current) and (
            AutomationCore.model_validate(current.model_dump(include=keys | {"name"})).model_dump(include=keys)
            != desired.model_dump(include=keys)
        )
        if not changes.note("automation", desired.name, current is not None, differs):
            continue
        if current is None:
            client.create_automation(desired)
        else:
            client.update_automation(current.id, desired)
        for duplicate in existing[1:]:
            client.delete_automation(duplicate.id)


def deploy(
    target: str = "process",
    image: str | None = None,
    code_dir: Path = ROOT,
    env: Mapping[str, str] | None = None,
    crons: Mapping[str, str] | None = None,
) -> Changes:
    from prefect.client.orchestration import get_client

    env = os.environ if env is None else env
    if target == "ecs" and not image:
        raise ValueError("--target ecs needs --image (the pushed image of `make image`)")
    changes = Changes()
    with get_client(sync_client=True) as client:
        apply_pools(client, target, env, changes)
        apply_variable(client, settings_values(env), changes)
        apply_blocks(env, changes)
        ids = apply_deployments(client, target, image, code_dir, changes, crons)
        apply_automations(client, ids, changes)
    return changes
