"""The CDN in front of the bucket: one invalidation per update, for the paths that changed."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cps_covid.systems.aws import failed


def invalidate(client: Any, distribution_id: str, paths: list[str], caller_reference: str) -> str:
    """Create an invalidation; the same ``caller_reference`` never creates a second one."""
    try:
        answer = client.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": caller_reference},
        )
    except (BotoCoreError, ClientError) as err:
        raise failed("CloudFront", f"CreateInvalidation on {distribution_id}", err) from None
    return answer["Invalidation"]["Id"]


class Distribution:
    """The configured distribution: a ``resources.Cdn``."""

    def __init__(self, client: Any, distribution_id: str) -> None:
        self.client, self.id = client, distribution_id

    def invalidate(self, paths: list[str], reference: str) -> str:
        return invalidate(self.client, self.id, paths, reference)
