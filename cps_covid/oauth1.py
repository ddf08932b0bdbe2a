"""OAuth 1.0a request signing (HMAC-SHA1, RFC 5849), as the X API wants for posting as an account (pure).

User-context OAuth 1.0a tokens do not expire, unlike OAuth 2.0 user tokens
(two hours, then a refresh), which suits an unattended flow. A JSON body is
not part of the signature; query parameters and form fields are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlsplit


def percent(text: str) -> str:
    """RFC 3986 percent-encoding: everything but unreserved characters."""
    return quote(text, safe="-._~")


def base_url(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path or '/'}"


def signature_base(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``METHOD&url&params``: query, oauth and form parameters, encoded, sorted by name then value."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    pairs = sorted((percent(k), percent(v)) for k, v in [*query, *params])
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join([method.upper(), percent(base_url(url)), percent(normalized)])


def signature(base: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent(consumer_secret)}&{percent(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()


def authorization(
    method: str,
    url: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    nonce: str,
    timestamp: int,
    form: Iterable[tuple[str, str]] = (),
) -> str:
    """The ``Authorization: OAuth ...`` header value for one request."""
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_nonce": nonce,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(timestamp),
        "oauth_token": token,
        "oauth_version": "1.0",
    }
    base = signature_base(method, url, [*oauth.items(), *form])
    oauth["oauth_signature"] = signature(base, consumer_secret, token_secret)
    return "OAuth " + ", ".join(f'{percent(k)}="{percent(v)}"' for k, v in sorted(oauth.items()))
