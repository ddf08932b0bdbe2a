"""CloudFormation: the stack's outputs, which ``cps-covid deploy --stack`` turns into settings.

The operator deploys ``deployments/cloudformation.yaml`` once; everything the pools, the settings
variable and the deployments need from AWS (bucket, topics, roles, network, the Prefect credential's
secret) is then read from the stack instead of copied by hand.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from cps_covid.systems.aws import client, failed

# Output -> the environment variable `cps-covid deploy` reads (settings, and the ECS pool's template).
OUTPUT_ENVIRONMENT = {
    "BucketName": "CPS_COVID_BUCKET",
    "DistributionId": "CPS_COVID_DISTRIBUTION_ID",
    "SubscribersTopicArn": "CPS_COVID_TOPIC_ARN",
    "AlarmTopicArn": "CPS_COVID_ALARM_TOPIC_ARN",
    "MetricNamespace": "CPS_COVID_HEARTBEAT_NAMESPACE",
    "ClusterName": "CPS_COVID_ECS_CLUSTER",
    "TaskRoleArn": "CPS_COVID_ECS_TASK_ROLE_ARN",
    "ExecutionRoleArn": "CPS_COVID_ECS_EXECUTION_ROLE_ARN",
    "LogGroupName": "CPS_COVID_ECS_LOG_GROUP",
    "FlowSubnets": "CPS_COVID_ECS_SUBNETS",
    "FlowSecurityGroups": "CPS_COVID_ECS_SECURITY_GROUPS",
    "FlowVpcId": "CPS_COVID_ECS_VPC_ID",
    "PrefectApiKeySecretArn": "CPS_COVID_ECS_PREFECT_API_KEY_SECRET_ARN",
    "PrefectApiAuthStringSecretArn": "CPS_COVID_ECS_PREFECT_API_AUTH_STRING_SECRET_ARN",
}


def stack_outputs(stack: str) -> dict[str, str]:
    """The stack's outputs by key; a stack that is missing or not complete is an error that names it."""
    try:
        (found,) = client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as err:
        raise failed("CloudFormation", f"DescribeStacks {stack}", err) from None
    if not is_usable(found["StackStatus"]):
        raise ValueError(f"stack {stack} is {found['StackStatus']}: deploy it before `cps-covid deploy --stack`")
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def is_usable(status: str) -> bool:
    """Whether a stack in ``status`` has working resources to read.

    A finished create, update or import is; so is a rolled-back update, which is back on its
    last working template. A rolled-back create (``ROLLBACK_COMPLETE``), a deleted stack and
    anything in progress or failed are not.
    """
    return status.endswith("_COMPLETE") and status not in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE")


def stack_environment(outputs: dict[str, str]) -> dict[str, str]:
    """The environment variables the outputs stand for (outputs this project does not read are left out)."""
    return {name: outputs[key] for key, name in OUTPUT_ENVIRONMENT.items() if outputs.get(key)}
