"""Loopback stand-ins for the X API and the Graph API (tests): they check what real ones check.

Built like ``feed_server.FeedServer``: a real socket, every request recorded,
and scripted faults (error answers, or an answer held until the client gives
up). The X stand-in verifies the OAuth 1.0a signature with oauthlib, an
implementation independent of ``cps_covid.oauth1``, refuses a text over 280
weighted characters and a duplicate text, as X does; the Graph stand-in checks
the page, the page token and ``appsecret_proof``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from local.loopback import LoopbackServer, QuietHandler


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Fault:
    status: int = 503
    body: dict = field(default_factory=lambda: {"title": "Service Unavailable"})
    hold: threading.Event | None = None
    """Answer only once this is set (or after 30 s): the client times out first, not knowing the outcome."""


class StandIn(LoopbackServer):
    """Base: a loopback server that records requests; subclasses answer ``handle(method, path, headers, body)``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        super().__init__()

    def __exit__(self, *exc: object) -> None:
        for fault in self.faults:
            if fault.hold is not None:
                fault.hold.set()
        super().__exit__(*exc)

    @property
    def url(self) -> str:
        return self.base_url

    def fail(self, *faults: Fault) -> None:
        """Answer the next requests with these faults, in order, before answering normally again."""
        with self._lock:
            self.faults.extend(faults)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with stand_in._lock:
                    stand_in.requests.append(Recorded("POST", self.path, headers, body))
                    fault = stand_in.faults.pop(0) if stand_in.faults else None
                if fault is not None:
                    if fault.hold is not None:
                        fault.hold.wait(timeout=30)
                    status, answer = fault.status, fault.body
                else:
                    with stand_in._lock:
                        status, answer = stand_in.handle("POST", self.path, headers, body)
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


_URL = re.compile(r"https?://\S+")


def x_weight(text: str) -> int:
    """X's count, as the stand-in applies it: URLs 23, characters above U+10FF twice."""
    plain = _URL.sub("", text)
    return 23 * len(_URL.findall(text)) + sum(1 if ord(c) <= 0x10FF else 2 for c in plain)


class XApiStandIn(StandIn):
    """``POST /2/tweets`` with OAuth 1.0a user context and a JSON body ``{"text": ...}``."""

    def __init__(self, api_key: str, api_secret: str, access_token: str, access_token_secret: str) -> None:
        super().__init__()
        self.keys = (api_key, api_secret, access_token, access_token_secret)
        self.posts: list[dict] = []

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        if path != "/2/tweets":
            return 404, {"title": "Not Found Error"}
        if not self._signed(path, headers):
            return 401, {"title": "Unauthorized", "detail": "Unauthorized", "status": 401}
        if not headers.get("content-type", "").startswith("application/json"):
            return 400, {"title": "Invalid Request", "detail": "The request body must be JSON"}
        try:
            text = json.loads(body)["text"]
        except (ValueError, KeyError, TypeError):
            return 400, {"title": "Invalid Request", "detail": "text is required"}
        if not isinstance(text, str) or not text.strip() or x_weight(text) > 280:
            return 400, {"title": "Invalid Request", "detail": "text must be 1 to 280 characters"}
        if any(p["text"] == text for p in self.posts):
            detail = "You are not allowed to create a Tweet with duplicate content."
            return 403, {"title": "Forbidden", "detail": detail, "status": 403}
        post = {"id": str(1445880548472328192 + len(self.posts)), "text": text}
        self.posts.append(post)
        return 201, {"data": post}

    def _signed(self, path: str, headers: dict[str, str]) -> bool:
        from oauthlib.oauth1.rfc5849 import signature

        authorization = headers.get("authorization", "")
        if not authorization.startswith("OAuth "):
            return False
        uri = f"http://{headers.get('host', '')}{path}"
        sent = dict(
            signature.collect_parameters(headers={"Authorization": authorization}, exclude_oauth_signature=False)
        )
        api_key, api_secret, token, token_secret = self.keys
        if sent.get("oauth_consumer_key") != api_key or sent.get("oauth_token") != token:
            return False
        if sent.get("oauth_signature_method") != "HMAC-SHA1" or not sent.get("oauth_nonce"):
            return False
        request = SimpleNamespace(
            uri=uri,
            http_method="POST",
            params=signature.collect_parameters(
                uri_query=urlsplit(uri).query, headers={"Authorization": authorization}
            ),
            signature=sent.get("oauth_signature", ""),
        )
        return signature.verify_hmac_sha1(request, api_secret, token_secret)


class GraphApiStandIn(StandIn):
    """``POST /<version>/<page id>/feed`` with ``message``, ``link``, ``access_token``, ``appsecret_proof``."""

    def __init__(self, page_id: str, page_access_token: str, app_secret: str = "") -> None:
        super().__init__()
        self.page_id = page_id
        self.token = page_access_token
        self.app_secret = app_secret
        self.posts: list[dict] = []

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v21.0"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        if path != f"/v21.0/{self.page_id}/feed":
            return 404, {"error": {"message": "Unknown path components", "type": "OAuthException", "code": 2500}}
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {"error": {"message": "Unsupported post request", "type": "GraphMethodException", "code": 100}}
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        if form.get("access_token") != self.token:
            return 400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
        if self.app_secret:
            proof = hmac.new(self.app_secret.encode(), self.token.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(form.get("appsecret_proof", ""), proof):
                error = {"message": "Invalid appsecret_proof provided in the API argument", "code": 100}
                return 400, {"error": error | {"type": "GraphMethodException"}}
        if not form.get("message"):
            return 400, {"error": {"message": "(#100) message is required", "type": "OAuthException", "code": 100}}
        post = {"id": f"{self.page_id}_{9000 + len(self.posts)}", "message": form["message"], "link": form.get("link")}
        self.posts.append(post)
        return 200, {"id": post["id"]}
