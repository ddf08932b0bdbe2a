"""The CloudFormation template: linted, created on the moto server, and its policy kept least-privilege."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deployments/cloudformation.yaml"


def template() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


@pytest.mark.slow  # a whole season, a subprocess or a benchmark: not in make check
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
    refs = {
        "SubscribersTopic": "${SubscribersTopicArn}",
        "AlarmTopic": "${AlarmTopicArn}",
        "MetricNamespace": "${MetricNamespace}",
    }

    def plain(value):
        if isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for cfn, ours in names.items():
                text = text.replace(cfn, ours)
            return text
        if isinstance(value, dict) and "Ref" in value:
            return refs[value["Ref"]]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    (policy,) = template()["Resources"]["TaskRole"]["Properties"]["Policies"]
    statements = [plain(s) for s in policy["PolicyDocument"]["Statement"]]
    assert statements == json.loads((ROOT / "deployments/task-role-policy.json").read_text())["Statement"]
    assert not any(":*" in str(s["Action"]) for s in statements)
    unbounded = [s for s in statements if s["Resource"] == "*"]  # an action that takes no resource, conditioned
    assert [(s["Action"], s["Condition"]) for s in unbounded] == [
        ("cloudwatch:PutMetricData", {"StringEquals": {"cloudwatch:namespace": "${MetricNamespace}"}})
    ]


def test_the_watchdogs_alarm_on_a_silent_watch_or_no_update_for_12_hours_and_say_when_it_recovers() -> None:
    from cps_covid.rules import watch
    from cps_covid.settings import Settings
    from cps_covid.systems.cloudwatch import HEARTBEAT_METRIC, WATCH_METRIC

    stack = template()
    assert stack["Parameters"]["MetricNamespace"]["Default"] == Settings.model_fields["heartbeat_namespace"].default
    windows = {}
    for name, metric in (("WatchHeartbeatAlarm", WATCH_METRIC), ("UpdateHeartbeatAlarm", HEARTBEAT_METRIC)):
        alarm = stack["Resources"][name]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ({"Ref": "MetricNamespace"}, metric)
        assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == ("Sum", "LessThanThreshold", 1)
        assert alarm["TreatMissingData"] == "breaching" and alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"]
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
        windows[name] = alarm["Period"] * alarm["EvaluationPeriods"]
    # the watch polls every minute; the backstop cron completes an update every 6 hours, so a quiet week
    # (no change at all) never fires either
    assert windows == {"WatchHeartbeatAlarm": 15 * 60, "UpdateHeartbeatAlarm": 12 * 3600}
    backstop = yaml.safe_load((ROOT / "prefect.yaml").read_text())["definitions"]["schedules"]["backstop"]
    assert backstop["cron"] == "5 0,6,12,18 * * *" and watch.WATCH_KEY.startswith("state/")
    told = (ROOT / "docs/alarms.md").read_text()
    assert f"`{HEARTBEAT_METRIC}`" in told and f"`{WATCH_METRIC}`" in told and "missing data as breaching" in told


def test_stack_creates_on_the_moto_server(moto_endpoint: str) -> None:
    from local.aws_emulator import Emulated

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
        "TaskEventsQueue",
        "TaskEventsRule",
        "WorkerPolicy",
    } <= set(created)
    assert outputs["TaskEventsQueueName"] == "cps-covid-ecs-task-events" and outputs["WorkerPolicyArn"]

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
        "PutTheHeartbeat",
    }
    assert inline["Statement"][0]["Resource"] == "arn:aws:s3:::cps-covid-stack-test/*"

    # moto's CloudFormation cannot make a CloudWatch alarm: made from the template's properties, as CloudWatch
    # takes them (the same names as PutMetricAlarm's), so a property CloudWatch would refuse fails here.
    refs = {"MetricNamespace": outputs["MetricNamespace"], "AlarmTopic": outputs["AlarmTopicArn"]}
    resources = template()["Resources"]

    def resolved(value):
        if isinstance(value, dict) and "Ref" in value:
            return refs[value["Ref"]]
        if isinstance(value, dict) and "Fn::Sub" in value:
            return value["Fn::Sub"].replace("${AWS::StackName}", "cps-covid")
        return [resolved(v) for v in value] if isinstance(value, list) else value

    for name in ("UpdateHeartbeatAlarm", "WatchHeartbeatAlarm"):
        properties = resources[name]["Properties"]
        aws.client("cloudwatch").put_metric_alarm(**{k: resolved(v) for k, v in properties.items()})
    made = aws.client("cloudwatch").describe_alarms(
        AlarmNames=["cps-covid-no-completed-update", "cps-covid-no-feed-watch"]
    )
    assert sorted((a["Namespace"], a["MetricName"], a["TreatMissingData"]) for a in made["MetricAlarms"]) == [
        ("cps-covid", "UpdatesCompleted", "breaching"),
        ("cps-covid", "WatchPolls", "breaching"),
    ]
    assert all(a["AlarmActions"] == a["OKActions"] == [outputs["AlarmTopicArn"]] for a in made["MetricAlarms"])


# --- the email subscription service (optional: SubscriptionsImage) ---------------------------------------------

SERVICE_REFS = {
    "SubscriptionsImage": "${Image}",
    "SubscribersTopic": "${SubscribersTopicArn}",
    "SiteOrigin": "${SiteOrigin}",
    "AWS::Region": "${Region}",
    "SubscriptionsLogGroup": "${LogGroupName}",
    "ExecutionRole": "${ExecutionRoleArn}",
    "SubscriptionsTaskRole": "${SubscriptionsTaskRoleArn}",
}


def as_register_input(value):
    """CloudFormation's TaskDefinition properties as ``register-task-definition`` input, refs as placeholders."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return SERVICE_REFS[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return SERVICE_REFS[value["Fn::GetAtt"][0]]
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: as_register_input(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_register_input(v) for v in value]
    return value


def test_the_subscription_service_exists_only_when_an_image_is_given() -> None:
    resources = template()["Resources"]
    service = {name for name in resources if name.startswith("Subscriptions")}
    assert service == {
        "SubscriptionsLogGroup",
        "SubscriptionsTaskRole",
        "SubscriptionsTaskDefinition",
        "SubscriptionsService",
        "SubscriptionsLoadBalancerSecurityGroup",
        "SubscriptionsServiceSecurityGroup",
        "SubscriptionsLoadBalancer",
        "SubscriptionsTargetGroup",
        "SubscriptionsListener",
        "SubscriptionsWebAcl",
        "SubscriptionsWebAclAssociation",
    }
    assert all(resources[name]["Condition"] == "HasSubscriptionsService" for name in service)
    assert resources["SubscriptionsService"]["Properties"]["LaunchType"] == "FARGATE"  # moto drops it: checked here
    assert template()["Parameters"]["SubscriptionsImage"]["Default"] == ""


def test_task_definition_file_is_the_templates() -> None:
    """deployments/subscriptions-task-definition.json (for accounts without the stack) never drifts from it."""
    properties = template()["Resources"]["SubscriptionsTaskDefinition"]["Properties"]
    checked_in = json.loads((ROOT / "deployments/subscriptions-task-definition.json").read_text())
    assert as_register_input(properties) == checked_in
    (container,) = checked_in["containerDefinitions"]
    assert container["command"] == ["cps-covid", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert "/healthz" in container["healthCheck"]["command"][-1] and container["readonlyRootFilesystem"] is True
    assert not [e for e in container["environment"] if "SECRET" in e["name"] or "KEY" in e["name"]]


def test_subscriptions_task_role_policy_file_is_the_templates_and_only_subscribes() -> None:
    (policy,) = template()["Resources"]["SubscriptionsTaskRole"]["Properties"]["Policies"]
    statements = [
        {k: ("${SubscribersTopicArn}" if v == {"Ref": "SubscribersTopic"} else v) for k, v in s.items()}
        for s in policy["PolicyDocument"]["Statement"]
    ]
    checked_in = json.loads((ROOT / "deployments/subscriptions-task-role-policy.json").read_text())
    assert statements == checked_in["Statement"]
    assert [(s["Action"], s["Resource"]) for s in statements] == [("sns:Subscribe", "${SubscribersTopicArn}")]


def test_stack_creates_the_subscription_service_on_the_moto_server(moto_endpoint: str) -> None:
    from local.aws_emulator import Emulated

    aws = Emulated(moto_endpoint, "", "", "")
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{n}.0/24", AvailabilityZone=f"us-east-1{zone}")["Subnet"][
            "SubnetId"
        ]
        for n, zone in ((1, "a"), (2, "b"))
    ]
    certificate = aws.client("acm").request_certificate(DomainName="subscribe.cpscovid.test")["CertificateArn"]
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cps-covid-etl:latest"
    parameters = {
        "BucketName": "cps-covid-service-test",
        "SubscriptionsImage": image,
        "SiteOrigin": "https://cpscovid.test",
        "VpcId": vpc,
        "SubnetIds": ",".join(subnets),
        "CertificateArn": certificate,
    }
    cfn = aws.client("cloudformation")
    cfn.create_stack(
        StackName="cps-covid-service",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )

    (stack,) = cfn.describe_stacks(StackName="cps-covid-service")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["SubscribeUrl"].startswith("https://") and outputs["SubscribeUrl"].endswith("/subscribe")
    ecs = aws.client("ecs")
    (service,) = ecs.describe_services(cluster=outputs["ClusterName"], services=["cps-covid-subscriptions"])["services"]
    assert service["desiredCount"] == 1
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    assert container["image"] == image and container["command"][:2] == ["cps-covid", "serve"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["CPS_COVID_TOPIC_ARN"] == outputs["SubscribersTopicArn"]
    assert environment["CPS_COVID_SITE_ORIGIN"] == "https://cpscovid.test"

    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName="cps-covid-service")["StackResourceSummaries"]
    }
    role = physical["SubscriptionsTaskRole"].rsplit("/", 1)[-1]
    inline = aws.client("iam").get_role_policy(RoleName=role, PolicyName="cps-covid-subscriptions")["PolicyDocument"]
    if isinstance(inline, str):  # moto answers the document as a Python literal
        inline = ast.literal_eval(inline)
    assert [(s["Action"], s["Resource"]) for s in inline["Statement"]] == [
        ("sns:Subscribe", outputs["SubscribersTopicArn"])
    ]

    elb = aws.client("elbv2")
    (target_group,) = [g for g in elb.describe_target_groups()["TargetGroups"] if g["VpcId"] == vpc]
    assert (target_group["HealthCheckPath"], target_group["Port"], target_group["TargetType"]) == (
        "/healthz",
        8080,
        "ip",
    )
    (listener,) = elb.describe_listeners(LoadBalancerArn=target_group["LoadBalancerArns"][0])["Listeners"]
    assert (listener["Port"], listener["Protocol"]) == (443, "HTTPS")
    assert listener["Certificates"][0]["CertificateArn"] == certificate


def test_task_definition_file_registers_on_the_moto_server(moto_endpoint: str) -> None:
    from local.aws_emulator import Emulated

    values = {
        "${Image}": "cps-covid-etl:latest",
        "${ExecutionRoleArn}": "arn:aws:iam::123456789012:role/execution",
        "${SubscriptionsTaskRoleArn}": "arn:aws:iam::123456789012:role/subscriptions",
        "${SubscribersTopicArn}": "arn:aws:sns:us-east-1:123456789012:cps-covid-new-cases",
        "${SiteOrigin}": "https://cpscovid.com",
        "${Region}": "us-east-1",
        "${LogGroupName}": "/cps-covid/subscriptions",
    }
    text = (ROOT / "deployments/subscriptions-task-definition.json").read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    assert "${" not in text
    registered = Emulated(moto_endpoint, "", "", "").client("ecs").register_task_definition(**json.loads(text))
    assert registered["taskDefinition"]["family"] == "cps-covid-subscriptions"
    assert registered["taskDefinition"]["containerDefinitions"][0]["portMappings"][0]["containerPort"] == 8080


def test_a_rate_rule_blocks_one_flooding_address_before_the_subscription_service() -> None:
    """Never stricter than the service's own limit for one address, so it only stops floods early."""
    from cps_covid.settings import Settings

    resources = template()["Resources"]
    (rule,) = resources["SubscriptionsWebAcl"]["Properties"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rule["Action"] == {"Block": {}} and rate["AggregateKeyType"] == "IP"
    service = Settings()
    assert (
        rate["Limit"] / rate["EvaluationWindowSec"]
        >= service.subscribe_client_limit / service.subscribe_client_window_seconds
    )
    association = resources["SubscriptionsWebAclAssociation"]["Properties"]
    assert association["ResourceArn"] == {"Ref": "SubscriptionsLoadBalancer"}
    assert association["WebACLArn"] == {"Fn::GetAtt": ["SubscriptionsWebAcl", "Arn"]}


def test_with_the_sites_certificate_viewers_need_tls_1_2() -> None:
    config = template()["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    condition, with_certificate, without = config["ViewerCertificate"]["Fn::If"]
    assert condition == "HasSiteDomain"
    assert with_certificate == {
        "AcmCertificateArn": {"Ref": "SiteCertificateArn"},
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",
    }
    assert without == {"CloudFrontDefaultCertificate": True}
    assert config["Aliases"]["Fn::If"][:2] == ["HasSiteDomain", [{"Ref": "SiteDomainName"}]]


def test_the_workers_are_services_of_the_image_with_the_credential_as_an_ecs_secret() -> None:
    from cps_covid.operations.deploy import POOLS

    resources = template()["Resources"]
    for service, definition, pool in (
        ("EcsWorkerService", "EcsWorkerTaskDefinition", "ecs"),
        ("AlertsWorkerService", "AlertsWorkerTaskDefinition", "alerts"),
    ):
        properties = resources[service]["Properties"]
        assert resources[service]["Condition"] == "HasWorkers"
        assert (properties["LaunchType"], properties["DesiredCount"]) == ("FARGATE", 1)
        assert properties["TaskDefinition"] == {"Ref": definition}
        (container,) = resources[definition]["Properties"]["ContainerDefinitions"]
        name, pool_type, _ = POOLS[pool]
        assert container["Image"] == {"Ref": "Image"}
        assert container["Command"][:7] == ["prefect", "worker", "start", "--pool", name, "--type", pool_type]
        assert container["Secrets"] == [
            {"Name": {"Ref": "PrefectCredential"}, "ValueFrom": {"Ref": "PrefectCredentialSecretArn"}}
        ]
        names = {e["Name"] for e in container["Environment"]}
        assert "PREFECT_API_URL" in names and not names & {"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"}
        assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "WorkerLogGroup"}
    assert resources["EcsWorkerRole"]["Properties"]["ManagedPolicyArns"] == [{"Ref": "WorkerPolicy"}]
    (alert_policy,) = resources["AlertsWorkerRole"]["Properties"]["Policies"]
    bucket = "arn:${AWS::Partition}:s3:::${DataBucket}"
    assert [(s["Action"], s["Resource"]) for s in alert_policy["PolicyDocument"]["Statement"]] == [
        ("sns:Publish", {"Ref": "AlarmTopic"}),
        ("s3:GetObject", {"Fn::Sub": f"{bucket}/state/*"}),  # the watch's state and the ledger, nothing published
        ("s3:ListBucket", {"Fn::Sub": bucket}),
        (
            ["s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"],
            [{"Fn::Sub": f"{bucket}/state/watch.json"}, {"Fn::Sub": f"{bucket}/state/alarms/*"}],
        ),
        ("cloudwatch:PutMetricData", "*"),  # in the heartbeat's namespace only
    ]
    (read,) = resources["ExecutionRoleReadsThePrefectCredential"]["Properties"]["PolicyDocument"]["Statement"]
    assert (read["Action"], read["Resource"]) == (
        "secretsmanager:GetSecretValue",
        {"Ref": "PrefectCredentialSecretArn"},
    )
    assert template()["Parameters"]["PrefectCredential"]["AllowedValues"] == [
        "PREFECT_API_KEY",
        "PREFECT_API_AUTH_STRING",
    ]


def test_every_output_deploy_reads_is_in_the_template_and_means_a_setting_or_a_pool_value() -> None:
    from cps_covid.operations.deploy import ECS_ENV
    from cps_covid.settings import ENV_PREFIX, Settings
    from cps_covid.systems.cloudformation import OUTPUT_ENVIRONMENT

    outputs = template()["Outputs"]
    assert set(OUTPUT_ENVIRONMENT) <= set(outputs)
    settings = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    pool = set(ECS_ENV.values()) | {
        "CPS_COVID_ECS_LOG_GROUP",
        "CPS_COVID_ECS_SUBNETS",
        "CPS_COVID_ECS_SECURITY_GROUPS",
        "CPS_COVID_ECS_VPC_ID",
    }
    assert set(OUTPUT_ENVIRONMENT.values()) <= settings | pool
    key, auth = outputs["PrefectApiKeySecretArn"], outputs["PrefectApiAuthStringSecretArn"]
    assert (key["Condition"], auth["Condition"]) == ("CredentialIsApiKey", "CredentialIsAuthString")


@pytest.mark.slow  # a subprocess: not in make check
def test_checkov_finds_nothing_in_the_stack_or_the_dockerfile_and_every_skip_says_why() -> None:
    """checkov (make test installs it in its own venv, .cache/checkov): 0 failed; a skip is a reasoned exception."""
    checkov = ROOT / ".cache/checkov/bin/checkov"
    assert checkov.exists(), "checkov is not installed: `make checkov` (make test does it)"
    done = subprocess.run(
        [str(checkov), "-f", str(TEMPLATE), "-f", str(ROOT / "Dockerfile"), "-o", "json", "--compact"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT / ".cache"), "BC_SKIP_MAPPING": "TRUE"},
    )
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {r["check_type"] for r in reports} == {"cloudformation", "dockerfile"}
    for report in reports:
        results = report["results"]
        failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
        assert failed == [], f"{report['check_type']}: {failed}"
        assert results["passed_checks"], report["check_type"]
        skipped = results["skipped_checks"]
        assert skipped, report["check_type"]  # the template's and the Dockerfile's deliberate exceptions are read
        unexplained = [c["check_id"] for c in skipped if len(c["check_result"].get("suppress_comment") or "") < 20]
        assert unexplained == [], f"{report['check_type']}: skips without a reason: {unexplained}"
