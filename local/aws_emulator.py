"""The embedded AWS: a moto server on a free loopback port with the bucket, CDN and topic the flow uses."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from cps_covid.rules import publish_plan
from cps_covid.rules.cache_control import cache_control

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def aws_environment(endpoint_url: str) -> dict[str, str]:
    """What any process needs to reach the emulator as "AWS": its endpoint, the region and fake keys."""
    return FAKE_CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint_url, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}


@dataclass(frozen=True)
class Emulated:
    endpoint_url: str
    bucket: str
    distribution_id: str
    topic_arn: str
    alarm_topic_arn: str = ""

    def environment(self) -> dict[str, str]:
        """What the flow (in this process, a subprocess or a container) needs to reach the emulator."""
        return aws_environment(self.endpoint_url) | {
            "CPS_COVID_BUCKET": self.bucket,
            "CPS_COVID_DISTRIBUTION_ID": self.distribution_id,
            "CPS_COVID_TOPIC_ARN": self.topic_arn,
            "CPS_COVID_ALARM_TOPIC_ARN": self.alarm_topic_arn,
        }

    def client(self, service: str):
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def sent_notifications(self) -> list[dict]:
        """What SNS published, per topic, as moto's ``/moto-api/data.json`` records it."""
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json") as answer:
            topics = json.load(answer).get("sns", {}).get("Topic", [])
        return [
            {"topic_arn": topic["arn"], "message_id": sent[0], "message": sent[1], "subject": sent[2]}
            for topic in topics
            for sent in topic.get("sent_notifications", [])
        ]

    def heartbeats(self, namespace: str = "cps-covid") -> int:
        """How many heartbeats completed runs put (``cloudwatch.HEARTBEAT_METRIC``), as CloudWatch sums them."""
        from datetime import UTC, datetime, timedelta

        from cps_covid.systems.cloudwatch import HEARTBEAT_METRIC

        now = datetime.now(UTC)
        points = self.client("cloudwatch").get_metric_statistics(
            Namespace=namespace,
            MetricName=HEARTBEAT_METRIC,
            StartTime=now - timedelta(days=1),
            EndTime=now + timedelta(minutes=5),
            Period=86400,
            Statistics=["Sum"],
        )["Datapoints"]
        return int(sum(point["Sum"] for point in points))

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")).close()


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port; yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def provision(endpoint_url: str, bucket: str = "cpscovid-demo") -> Emulated:
    """Create the versioned bucket, a CloudFront distribution in front of it, the subscribers' and alarm topics."""
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    probe = Emulated(endpoint_url, bucket, "", "")
    s3 = probe.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    distribution = create_distribution(probe, bucket)
    topic = probe.client("sns").create_topic(Name=f"{bucket}-new-cases")["TopicArn"]
    alarms = probe.client("sns").create_topic(Name=f"{bucket}-alarms")["TopicArn"]
    return Emulated(endpoint_url, bucket, distribution, topic, alarms)


def create_distribution(emulated: Emulated, bucket: str) -> str:
    """A CloudFront distribution in front of ``bucket``; returns its id."""
    origin = f"{bucket}.s3.amazonaws.com"
    return emulated.client("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": f"cps-covid-{bucket}",
            "Comment": "cps-covid demo",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [{"Id": "bucket", "DomainName": origin, "S3OriginConfig": {"OriginAccessIdentity": ""}}],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "bucket",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            },
        }
    )["Distribution"]["Id"]


def seed_history(emulated: Emulated, history_dir: Path) -> None:
    """Put the published files of a day (the bundled 2021-09-22 state) into the bucket."""
    found = {key: history_dir / Path(key).name for key in publish_plan.DATA_KEYS}
    seed_objects(emulated, {key: path.read_bytes() for key, path in found.items() if path.exists()})


def seed_objects(emulated: Emulated, csvs: dict[str, bytes]) -> None:
    """Put published CSVs under their keys, as the flow writes them (content type, ``Cache-Control``)."""
    s3 = emulated.client("s3")
    for key, body in csvs.items():
        s3.put_object(
            Bucket=emulated.bucket,
            Key=key,
            Body=body,
            ContentType=publish_plan.CSV_TYPE,
            CacheControl=cache_control(key),
        )
