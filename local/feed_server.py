"""A loopback HTTP server standing in for the district's sources (demo and tests).

Each route can answer slowly, fail a number of times before answering, cut its
body short or send anything at all, so the flow's fetch is exercised against a
real socket, never a patched function.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from local.loopback import LoopbackServer, QuietHandler


@dataclass
class Route:
    body: bytes
    content_type: str = "text/csv; charset=utf-8"
    status: int = 200
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """Answers (status, headers) given before the real one, one per request."""
    delay_seconds: float = 0.0
    truncate_to: int | None = None
    """Declare the full length but send only this many bytes, then close."""
    gate: threading.Event | None = None
    """Hold the answer until the test sets this event (a run kept busy at a known point)."""
    arrived: threading.Event = field(default_factory=threading.Event)
    """Set when a request for this route arrives."""
    validators: bool = False
    """Answer with an ``ETag`` and ``Last-Modified`` of the body, and 304 to a GET that names them."""
    modified: str = "Thu, 23 Sep 2021 13:50:00 GMT"
    """The ``Last-Modified`` a route with validators gives."""

    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'

    def unchanged_for(self, headers) -> bool:
        """A conditional GET naming this body's validators (``If-None-Match`` wins, as in RFC 9110)."""
        if not self.validators:
            return False
        if (asked := headers.get("If-None-Match")) is not None:
            return asked == self.etag()
        return headers.get("If-Modified-Since") == self.modified


class FeedServer(LoopbackServer):
    """``with FeedServer() as server: server.route("/feed.csv", Route(...)); server.url("/feed.csv")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route | Callable[[], Route]] = {}
        """A path's answer, or a function that makes it at each request (a feed that changes over time)."""
        self.profiles: dict[str, dict] = {}
        self.requests: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        """Per path: the conditional GETs answered 304."""
        self.request_times: dict[str, list[float]] = {}
        self.on_profile_request: Callable[[], None] | None = None
        """Called when a profile is asked for: lets a test act at a known point of a run."""
        super().__init__()

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, route: Route | Callable[[], Route]) -> str:
        with self._lock:
            self.routes[path] = route
        return self.url(path)

    def serve_profiles(self, profiles_file: Path) -> str:
        """Serve ``SchoolProfileInformation?SchoolId=..`` from a JSON list; returns the URL template."""
        for record in json.loads(profiles_file.read_text()):
            self.profiles[str(record["SchoolID"])] = record
        return self.url("/schoolprofile/cps/SchoolProfileInformation?SchoolId={school_id}&SchoolYear={school_year}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                with server._lock:
                    server.requests[parsed.path] += 1
                    server.request_times.setdefault(parsed.path, []).append(time.monotonic())
                    route = server.routes.get(parsed.path)
                    route = route() if callable(route) else route
                    failure = route.failures.pop(0) if route and route.failures else None
                if parsed.path.endswith("/SchoolProfileInformation"):
                    if server.on_profile_request:
                        server.on_profile_request()
                    school = parse_qs(parsed.query).get("SchoolId", [""])[0]
                    record = server.profiles.get(school)
                    route = Route(json.dumps([record] if record else []).encode(), "application/json")
                if route is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                if failure:
                    status, headers = failure
                    self._send(status, f"error {status}".encode(), "text/plain", headers)
                    return
                route.arrived.set()
                if route.gate is not None:
                    route.gate.wait(timeout=600)
                if route.delay_seconds:
                    time.sleep(route.delay_seconds)
                if route.unchanged_for(self.headers):
                    with server._lock:
                        server.not_modified[parsed.path] += 1
                    self._send(304, b"", route.content_type, {"ETag": route.etag()})
                    return
                validators = {"ETag": route.etag(), "Last-Modified": route.modified} if route.validators else {}
                self._send(route.status, route.body, route.content_type, validators, route.truncate_to)

            def _send(
                self, status: int, body: bytes, content_type: str, headers: dict[str, str], cut: int | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(body if cut is None else body[:cut])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if cut is not None:
                    self.close_connection = True

        return Handler
