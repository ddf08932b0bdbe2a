"""The X (Twitter) API v2: one post as the dashboard's account, signed with OAuth 1.0a user context."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from oauthlib.oauth1 import Client

from cps_covid.rules.social import PostFailed
from cps_covid.systems.district import USER_AGENT

POST_PATH = "/2/tweets"


@dataclass(frozen=True)
class Credentials:
    """From the Prefect Secret block (``x_secret_block``), never from settings or the environment."""

    api_key: str
    api_secret: str
    access_token: str
    access_token_secret: str

    @classmethod
    def from_secret(cls, value: object, block: str) -> Credentials:
        fields = ("api_key", "api_secret", "access_token", "access_token_secret")
        if not isinstance(value, dict):
            raise PostFailed(f"Secret block {block!r} must hold a JSON object with {', '.join(fields)}")
        missing = [f for f in fields if not value.get(f)]
        if missing:
            raise PostFailed(f"Secret block {block!r} has no {', '.join(missing)}")
        return cls(*(str(value[f]) for f in fields))


def post(api_url: str, text: str, credentials: Credentials, *, timeout: float) -> str:
    """Publish ``text``; returns the post id. X refuses a duplicate text: that post is out already."""
    url = api_url.rstrip("/") + POST_PATH
    # OAuth 1.0a (HMAC-SHA1) by oauthlib: the JSON body is not part of the signature
    signer = Client(
        credentials.api_key,
        client_secret=credentials.api_secret,
        resource_owner_key=credentials.access_token,
        resource_owner_secret=credentials.access_token_secret,
    )
    header = signer.sign(url, http_method="POST")[1]["Authorization"]
    try:
        answer = httpx.post(
            url, json={"text": text}, headers={"Authorization": header, "User-Agent": USER_AGENT}, timeout=timeout
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as err:
        raise PostFailed(f"X API {url}: cannot connect ({type(err).__name__})") from None
    except httpx.TransportError as err:
        raise PostFailed(f"X API {url}: no answer after sending ({type(err).__name__})", uncertain=True) from None
    detail = _detail(answer)
    if answer.status_code == 403 and "duplicate" in detail.lower():
        return "duplicate"
    if answer.status_code not in (200, 201):
        raise PostFailed(f"X API {url}: HTTP {answer.status_code} {detail}".strip())
    try:
        return str(answer.json()["data"]["id"])
    except (ValueError, KeyError, TypeError):
        raise PostFailed(f"X API {url}: accepted but answered {answer.text[:120]!r}", uncertain=True) from None


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or "")[:200]
    return ""
