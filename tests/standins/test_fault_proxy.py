"""The fault-injection proxy in front of moto: what it forwards, what it breaks, when it calls back."""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from local.aws_emulator import REGION
from standins.fault_proxy import Fault, FaultProxy


def s3(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = "fault-proxy-test"
    client = s3(moto_endpoint)
    try:
        client.create_bucket(Bucket=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    client.put_object(Bucket=name, Key="page.html", Body=b"first")
    return name


def test_requests_without_a_fault_are_forwarded_unchanged(moto_endpoint: str, bucket: str) -> None:
    with FaultProxy(moto_endpoint) as proxy:
        client = s3(proxy.url)
        client.put_object(Bucket=bucket, Key="data.csv", Body=b"a,b\n1,2\n")
        head = client.head_object(Bucket=bucket, Key="data.csv")
        body = client.get_object(Bucket=bucket, Key="data.csv")["Body"].read()

    assert body == b"a,b\n1,2\n"
    assert head["ContentLength"] == 8  # a HEAD answer keeps the object's length, though it has no body
    assert [action for _, action in proxy.log] == ["forward"] * 3


def test_a_fail_fault_answers_with_the_aws_error_and_is_logged(moto_endpoint: str, bucket: str) -> None:
    with FaultProxy(moto_endpoint) as proxy:
        proxy.add(Fault(rf"^PUT /{bucket}/page\.html", status=503, code="SlowDown", times=1))
        client = s3(proxy.url)
        with pytest.raises(ClientError) as failed:
            client.put_object(Bucket=bucket, Key="page.html", Body=b"second")
        client.put_object(Bucket=bucket, Key="page.html", Body=b"third")

    assert failed.value.response["Error"]["Code"] == "SlowDown"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert [action for _, action in proxy.log] == ["fail", "forward"]
    assert s3(moto_endpoint).get_object(Bucket=bucket, Key="page.html")["Body"].read() == b"third"


def test_on_acts_after_forwarding_and_before_answering(moto_endpoint: str, bucket: str) -> None:
    """The reader gets what was there when its request reached moto; the action's write lands after it."""

    def other_writer() -> None:
        s3(moto_endpoint).put_object(Bucket=bucket, Key="page.html", Body=b"theirs")

    with FaultProxy(moto_endpoint) as proxy:
        done = proxy.on("GET", f"/{bucket}/page.html", other_writer)
        assert not done.is_set()
        read = s3(proxy.url).get_object(Bucket=bucket, Key="page.html")["Body"].read()
        again = s3(proxy.url).get_object(Bucket=bucket, Key="page.html")["Body"].read()

    assert done.is_set()
    assert read == b"first"
    assert again == b"theirs"  # ``times=1``: the second read is only forwarded
    assert [action for _, action in proxy.log] == ["after", "forward"]


def test_a_kill_fault_calls_back_and_closes_without_forwarding(moto_endpoint: str, bucket: str) -> None:
    killed = threading.Event()
    with FaultProxy(moto_endpoint) as proxy:
        fault = proxy.add(Fault(rf"^PUT /{bucket}/page\.html", action="kill", on_kill=killed.set))
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            s3(proxy.url).put_object(Bucket=bucket, Key="page.html", Body=b"never")

    assert killed.is_set() and fault.done.is_set()
    assert s3(moto_endpoint).get_object(Bucket=bucket, Key="page.html")["Body"].read() == b"first"


def test_a_chunked_upload_is_relayed_whole(moto_endpoint: str, bucket: str) -> None:
    with FaultProxy(moto_endpoint) as proxy:
        target = urlparse(proxy.url)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        connection.request(
            "PUT", f"/{bucket}/chunked.txt", body=iter([b"hello ", b"chunked ", b"world"]), encode_chunked=True
        )
        status = connection.getresponse().status
        connection.close()

    assert status == 200
    assert s3(moto_endpoint).get_object(Bucket=bucket, Key="chunked.txt")["Body"].read() == b"hello chunked world"
