"""boto3 clients for the flow, from a prefect-aws credentials block or boto3's default chain.

``AWS_ENDPOINT_URL`` (read by boto3 itself) points every client at an emulator.
Throttling and 5xx answers are retried by botocore's standard retry mode.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=30)


def session(credentials_block: str = "") -> boto3.Session:
    if credentials_block:
        from prefect_aws import AwsCredentials

        return AwsCredentials.load(credentials_block).get_boto3_session()
    return boto3.Session()


def client(service: str, credentials_block: str = "") -> Any:
    return session(credentials_block).client(service, config=RETRY_CONFIG)
