"""The Graph API: one post on the dashboard's Facebook page, with a page access token."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import httpx

from cps_covid.rules.social import PostFailed
from cps_covid.systems.district import USER_AGENT


@dataclass(frozen=True)
class Credentials:
    """From the Prefect Secret block (``facebook_secret_block``), never from settings or the environment."""

    page_access_token: str
    app_secret: str = ""
    """When set, each call carries ``appsecret_proof`` (the app may require it for server calls)."""

    @classmethod
    def from_secret(cls, value: object, block: str) -> Credentials:
        if not isinstance(value, dict) or not value.get("page_access_token"):
            raise PostFailed(f"Secret block {block!r} must hold a JSON object with page_access_token")
        return cls(str(value["page_access_token"]), str(value.get("app_secret") or ""))


def appsecret_proof(token: str, app_secret: str) -> str:
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def post(graph_url: str, page_id: str, message: str, link: str, credentials: Credentials, *, timeout: float) -> str:
    """Publish on the page's feed; returns the post id (``<page>_<post>``). The token goes in the body, not the URL."""
    if not page_id:
        raise PostFailed("no Facebook page: set CPS_COVID_FACEBOOK_PAGE_ID (facebook_page_id)")
    url = f"{graph_url.rstrip('/')}/{page_id}/feed"
    form = {"message": message, "link": link, "access_token": credentials.page_access_token}
    if credentials.app_secret:
        form["appsecret_proof"] = appsecret_proof(credentials.page_access_token, credentials.app_secret)
    try:
        answer = httpx.post(url, data=form, headers={"User-Agent": USER_AGENT}, timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout) as err:
        raise PostFailed(f"Graph API {url}: cannot connect ({type(err).__name__})") from None
    except httpx.TransportError as err:
        raise PostFailed(f"Graph API {url}: no answer after sending ({type(err).__name__})", uncertain=True) from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        detail = f"{error.get('type', '')} {error.get('code', '')}: {error.get('message', answer.text[:120])}"
        raise PostFailed(f"Graph API {url}: HTTP {answer.status_code} {detail.strip()}")
    if not isinstance(body, dict) or not body.get("id"):
        raise PostFailed(f"Graph API {url}: accepted but answered {answer.text[:120]!r}", uncertain=True)
    return str(body["id"])
