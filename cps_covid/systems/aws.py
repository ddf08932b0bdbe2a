"""boto3 clients for the flow, from a prefect-aws credentials block or boto3's default chain.

``AWS_ENDPOINT_URL`` (read by boto3 itself) points every client at an emulator.
Throttling and 5xx answers are retried by botocore's standard retry mode.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, cast

from cps_covid.errors import AwsCallFailed

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

MAX_ATTEMPTS = 5


@functools.cache
def retry_config() -> Config:
    """botocore's standard retry mode; boto3 and botocore are imported on the first client, not at import
    (half a second that a process which never reaches AWS, the CLI or a dry run, need not pay)."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS}, connect_timeout=10, read_timeout=30)


def session(credentials_block: str = "") -> boto3.Session:
    if credentials_block:
        from prefect_aws import AwsCredentials

        return cast(AwsCredentials, AwsCredentials.load(credentials_block)).get_boto3_session()
    import boto3

    return boto3.Session()


def client(service: str, credentials_block: str = "") -> Any:
    """One client per service and configuration for the process: building one parses the service model
    (about half a second for S3), and clients, unlike sessions, are safe to share between task threads."""
    return _client(service, credentials_block, _aws_environment())


def _aws_environment() -> tuple[tuple[str, str], ...]:
    """What boto3 reads from the environment (endpoint, region, keys): a change means a new client."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


@functools.lru_cache(maxsize=32)
def _client(service: str, credentials_block: str, environment: tuple[tuple[str, str], ...]) -> Any:
    return session(credentials_block).client(service, config=retry_config())  # type: ignore[call-overload]


def failed(system: str, call: str, err: Exception) -> AwsCallFailed:
    """Name the system and what was tried (botocore's text says how many attempts were made)."""
    return AwsCallFailed(f"{system} {call} failed (up to {MAX_ATTEMPTS} attempts with backoff): {err}")
