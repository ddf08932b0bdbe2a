"""The ECS pool's template as prefect-aws's own worker reads it: a job configuration its validators accept.

Before this test the template's network configuration was wrapped in
``awsvpcConfiguration`` (the worker wraps it itself) and set without a VPC, so
prefect-aws refused every ECS run before calling AWS.
"""

from __future__ import annotations

import asyncio

import pytest
from prefect_aws.workers.ecs_worker import ECSJobConfiguration

from cps_covid.operations import deploy as deploying

ACCOUNT = {
    "CPS_COVID_ECS_CLUSTER": "cps-covid",
    "CPS_COVID_ECS_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/cps-covid-task",
    "CPS_COVID_ECS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/cps-covid-execution",
    "CPS_COVID_ECS_LOG_GROUP": "/cps-covid/flows",
    "CPS_COVID_ECS_SUBNETS": "subnet-0a, subnet-0b",
    "CPS_COVID_ECS_SECURITY_GROUPS": "sg-0c",
    "CPS_COVID_ECS_VPC_ID": "vpc-0d",
}
JOB = {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/cps-covid-etl:latest", "family": "cps-covid-update"}


@pytest.fixture(autouse=True)
def _api(prefect_api: str) -> None:
    """The configuration is built as a worker builds it, with a client of the test Prefect server."""


def job_configuration(env: dict[str, str]) -> ECSJobConfiguration:
    template = deploying.pool_template("ecs", env)
    return asyncio.run(ECSJobConfiguration.from_template_and_values(template, JOB))


def test_the_account_s_template_is_a_job_configuration_prefect_aws_accepts() -> None:
    config = job_configuration(ACCOUNT)

    assert config.cluster == "cps-covid" and config.vpc_id == "vpc-0d"
    assert config.network_configuration == {
        "subnets": ["subnet-0a", "subnet-0b"],
        "securityGroups": ["sg-0c"],
        "assignPublicIp": "ENABLED",
    }
    assert config.execution_role_arn.endswith("role/cps-covid-execution") and config.configure_cloudwatch_logs
    assert config.cloudwatch_logs_options["awslogs-group"] == "/cps-covid/flows"
    assert config.task_definition["family"] == "cps-covid-update" and config.match_latest_revision_in_family
    assert (config.task_definition["cpu"], config.task_definition["memory"]) == (1024, 4096)
    assert config.task_definition["containerDefinitions"][0]["image"] == JOB["image"]


def test_without_subnets_the_worker_uses_the_default_vpc() -> None:
    env = {k: v for k, v in ACCOUNT.items() if k not in ("CPS_COVID_ECS_SUBNETS", "CPS_COVID_ECS_SECURITY_GROUPS")}
    config = job_configuration(env)
    assert not config.network_configuration and config.vpc_id is None


def test_subnets_without_their_vpc_are_refused_by_name() -> None:
    env = {k: v for k, v in ACCOUNT.items() if k != "CPS_COVID_ECS_VPC_ID"}
    with pytest.raises(ValueError, match="CPS_COVID_ECS_VPC_ID"):
        deploying.pool_template("ecs", env)
