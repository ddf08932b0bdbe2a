"""The versioned bucket the dashboard reads: reads with ETags, conditional writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from botocore.exceptions import BotoCoreError, ClientError

from cps_covid.errors import ConcurrentWriteError
from cps_covid.rules.cache_control import cache_control
from cps_covid.rules.publish_plan import Written
from cps_covid.systems import aws
from cps_covid.systems.aws import failed
from cps_covid.systems.storage import StoredObject

if TYPE_CHECKING:
    from cps_covid.settings import Settings


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class Bucket:
    """The bucket on S3 (or its emulator): a ``storage.Storage``."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def get(self, key: str) -> StoredObject | None:
        try:
            answer = self.client.get_object(Bucket=self.name, Key=key)
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404"):
                return None
            raise
        return StoredObject(key, answer["Body"].read(), answer["ETag"], answer.get("VersionId"))

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str,
        tags: dict[str, str],
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Written:
        """Write only if the object is still what we read (``if_match``) or still absent."""
        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        extra = ({"Tagging": urlencode(tags)} if tags else {}) | ({"Metadata": metadata} if metadata else {})
        try:
            answer = self.client.put_object(
                Bucket=self.name,
                Key=key,
                Body=body,
                ContentType=content_type,
                CacheControl=cache_control(key),
                **condition,
                **extra,
            )
        except ClientError as err:
            if _code(err) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                expected = f"ETag {if_match}" if if_match else "no object"
                raise ConcurrentWriteError(
                    f"s3://{self.name}/{key} changed since this run read it (expected {expected}); "
                    "another writer published first, nothing of theirs was overwritten: rerun to apply the feed"
                ) from None
            raise failed("S3", f"PutObject s3://{self.name}/{key}", err) from None
        except BotoCoreError as err:
            raise failed("S3", f"PutObject s3://{self.name}/{key}", err) from None
        return Written(key, answer["ETag"], answer.get("VersionId"))

    def etag(self, key: str) -> str | None:
        """The current ETag of ``key`` (a HEAD, no body), or ``None`` when there is no such object."""
        try:
            return self.client.head_object(Bucket=self.name, Key=key)["ETag"]
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def put_new(self, key: str, body: bytes, *, content_type: str, metadata: dict[str, str]) -> Written:
        """Write an immutable object: refused if the key exists, so nothing is ever replaced."""
        try:
            return self.put(key, body, content_type=content_type, tags={}, metadata=metadata)
        except ConcurrentWriteError:
            raise ConcurrentWriteError(f"s3://{self.name}/{key} already exists: it is immutable") from None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)

    def keys(self, prefix: str) -> list[str]:
        """The keys under ``prefix``, sorted (S3 lists them in key order)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def etags(self, prefix: str) -> dict[str, str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}


def bucket_of(settings: Settings) -> Bucket:
    """The configured bucket (``resources.Resources.of`` builds it once per run)."""
    return Bucket(aws.client("s3", settings.aws_credentials_block), settings.bucket)


def object_url(bucket: Bucket, key: str) -> str:
    """Where a person opens an object: on AWS its page in the S3 console, on an emulator its plain URL."""
    endpoint = bucket.client.meta.endpoint_url.rstrip("/")
    if endpoint.endswith(".amazonaws.com"):
        return f"https://console.aws.amazon.com/s3/object/{bucket.name}?prefix={quote(key)}"
    return f"{endpoint}/{bucket.name}/{quote(key)}"


def get_version(bucket: Bucket, key: str, version_id: str) -> bytes:
    return bucket.client.get_object(Bucket=bucket.name, Key=key, VersionId=version_id)["Body"].read()


def versions(bucket: Bucket, key: str) -> list[dict]:
    """Every version of ``key``, newest first (``VersionId``, ``LastModified``, ``ETag``, ``IsLatest``)."""
    pages = bucket.client.get_paginator("list_object_versions").paginate(Bucket=bucket.name, Prefix=key)
    found = [v for page in pages for v in page.get("Versions", []) if v["Key"] == key]
    return sorted(found, key=lambda v: v["LastModified"], reverse=True)
