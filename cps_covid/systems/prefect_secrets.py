"""Credentials kept in Prefect Secret blocks (the social channels' keys): loaded only when a post is due."""

from __future__ import annotations

from typing import cast

from cps_covid.rules.social import PostFailed


def secret(block: str) -> object:
    from prefect.blocks.system import Secret

    try:
        return cast(Secret, Secret.load(block)).get()
    except ValueError as err:
        raise PostFailed(f"cannot load the Prefect Secret block {block!r} ({err})") from None
