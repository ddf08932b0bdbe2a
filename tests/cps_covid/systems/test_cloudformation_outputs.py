"""The stack's outputs as ``cps-covid deploy --stack`` reads them, against moto's CloudFormation."""

from __future__ import annotations

import pytest

from cps_covid.errors import AwsCallFailed
from cps_covid.systems.cloudformation import OUTPUT_ENVIRONMENT, is_usable, stack_environment, stack_outputs
from local.aws_emulator import aws_environment

TEMPLATE = """
Resources:
  Topic:
    Type: AWS::SNS::Topic
Outputs:
  AlarmTopicArn:
    Value: {Ref: Topic}
  MetricNamespace:
    Value: cps-covid-test
  SomethingElse:
    Value: not read
"""


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    import boto3

    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    return boto3.client("cloudformation")


def test_the_outputs_it_knows_become_their_environment_variables(aws) -> None:
    aws.create_stack(StackName="outputs-test", TemplateBody=TEMPLATE)

    outputs = stack_outputs("outputs-test")

    assert outputs["MetricNamespace"] == "cps-covid-test" and outputs["AlarmTopicArn"].startswith("arn:aws:sns:")
    assert stack_environment(outputs) == {
        "CPS_COVID_ALARM_TOPIC_ARN": outputs["AlarmTopicArn"],
        "CPS_COVID_HEARTBEAT_NAMESPACE": "cps-covid-test",
    }
    assert "SomethingElse" not in OUTPUT_ENVIRONMENT


def test_a_missing_stack_is_an_error_that_names_it(aws) -> None:
    with pytest.raises(AwsCallFailed, match="CloudFormation DescribeStacks no-such-stack failed"):
        stack_outputs("no-such-stack")


def test_an_empty_output_sets_nothing() -> None:
    assert stack_environment({"BucketName": "", "ClusterName": "c"}) == {"CPS_COVID_ECS_CLUSTER": "c"}


@pytest.mark.parametrize(
    ("status", "usable"),
    [
        ("CREATE_COMPLETE", True),
        ("UPDATE_COMPLETE", True),
        ("UPDATE_ROLLBACK_COMPLETE", True),  # a failed update is back on its last working template
        ("IMPORT_COMPLETE", True),
        ("ROLLBACK_COMPLETE", False),  # a failed create: nothing to read
        ("DELETE_COMPLETE", False),
        ("CREATE_IN_PROGRESS", False),
        ("UPDATE_ROLLBACK_FAILED", False),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", False),
    ],
)
def test_only_a_stack_with_working_resources_is_read(status: str, usable: bool) -> None:
    assert is_usable(status) is usable
