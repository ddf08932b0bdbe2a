"""boto3 clients for the flow, from a prefect-aws credentials block or boto3's default chain.

``AWS_ENDPOINT_URL`` (read by boto3 itself) points every client at an emulator.
Throttling and 5xx answers are retried by botocore's standard retry mode.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from cps_covid.errors import AwsCallFailed

MAX_ATTEMPTS = 5
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS}, connect_timeout=10, read_timeout=30)


def session(credentials_block: str = "") -> boto3.Session:
    if credentials_block:
        from prefect_aws import AwsCredentials

        return AwsCredentials.load(credentials_block).get_boto3_session()
    return boto3.Session()


def client(service: str, credentials_block: str = "") -> Any:
    return session(credentials_block).client(service, config=RETRY_CONFIG)


def failed(system: str, call: str, err: Exception) -> AwsCallFailed:
    """Name the system and what was tried (botocore's text says how many attempts were made)."""
    return AwsCallFailed(f"{system} {call} failed (up to {MAX_ATTEMPTS} attempts with backoff): {err}")
