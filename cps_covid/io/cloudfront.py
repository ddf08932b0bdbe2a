"""The CDN in front of the bucket: one invalidation per update, for the paths that changed."""

from __future__ import annotations

from typing import Any


def invalidate(client: Any, distribution_id: str, paths: list[str], caller_reference: str) -> str:
    """Create an invalidation; the same ``caller_reference`` never creates a second one."""
    answer = client.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": caller_reference},
    )
    return answer["Invalidation"]["Id"]
