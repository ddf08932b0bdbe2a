"""The CloudFormation template: linted, created on the moto server, and its policy kept least-privilege."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deployments/cloudformation.yaml"


def template() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


def test_template_is_cfn_lint_clean() -> None:
    linter = Path(sys.executable).with_name("cfn-lint")
    done = subprocess.run([str(linter), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bucket_is_versioned_with_a_noncurrent_lifecycle_and_private() -> None:
    bucket = template()["Resources"]["DataBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "NoncurrentVersionDays"}}
    assert all(bucket["PublicAccessBlockConfiguration"].values())


def test_task_role_policy_file_is_the_templates_policy() -> None:
    """deployments/task-role-policy.json (for accounts without the stack) never drifts from the stack's."""
    names = {
        "${AWS::Partition}": "${Partition}",
        "${AWS::AccountId}": "${AccountId}",
        "${DataBucket}": "${BucketName}",
        "${Distribution}": "${DistributionId}",
    }
    refs = {"SubscribersTopic": "${SubscribersTopicArn}", "AlarmTopic": "${AlarmTopicArn}"}

    def plain(value):
        if isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for cfn, ours in names.items():
                text = text.replace(cfn, ours)
            return text
        if isinstance(value, dict) and "Ref" in value:
            return refs[value["Ref"]]
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    (policy,) = template()["Resources"]["TaskRole"]["Properties"]["Policies"]
    statements = [{k: plain(v) for k, v in s.items()} for s in policy["PolicyDocument"]["Statement"]]
    assert statements == json.loads((ROOT / "deployments/task-role-policy.json").read_text())["Statement"]
    assert not any(s["Resource"] == "*" or ":*" in str(s["Action"]) for s in statements)


def test_stack_creates_on_the_moto_server(moto_endpoint: str) -> None:
    from cps_covid.local.aws_emulator import Emulated

    aws = Emulated(moto_endpoint, "", "", "")
    cfn = aws.client("cloudformation")
    cfn.create_stack(
        StackName="cps-covid",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": "BucketName", "ParameterValue": "cps-covid-stack-test"}],
        Capabilities=["CAPABILITY_IAM"],
    )
    (stack,) = cfn.describe_stacks(StackName="cps-covid")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    created = {
        r["LogicalResourceId"]: r["ResourceType"]
        for r in cfn.list_stack_resources(StackName="cps-covid")["StackResourceSummaries"]
    }
    assert {
        "DataBucket",
        "SubscribersTopic",
        "AlarmTopic",
        "Cluster",
        "FlowLogGroup",
        "TaskRole",
        "ExecutionRole",
    } <= set(created)

    assert "cps-covid-stack-test" in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]
    topics = [t["TopicArn"] for t in aws.client("sns").list_topics()["Topics"]]
    assert outputs["SubscribersTopicArn"] in topics and outputs["AlarmTopicArn"] in topics
    assert aws.client("ecs").describe_clusters(clusters=[outputs["ClusterName"]])["clusters"][0]["status"] == "ACTIVE"
    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix="/cps-covid/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/cps-covid/flows"]
    role = outputs["TaskRoleArn"].rsplit("/", 1)[-1]
    inline = aws.client("iam").get_role_policy(RoleName=role, PolicyName="cps-covid-flow")["PolicyDocument"]
    if isinstance(inline, str):  # moto answers the document as a Python literal
        inline = ast.literal_eval(inline)
    assert {s["Sid"] for s in inline["Statement"]} == {
        "ReadAndWriteThePublishedObjects",
        "ListTheBucket",
        "InvalidateTheDistribution",
        "PublishToTheTopics",
    }
    assert inline["Statement"][0]["Resource"] == "arn:aws:s3:::cps-covid-stack-test/*"
