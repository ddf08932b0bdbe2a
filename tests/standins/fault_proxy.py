"""A loopback HTTP proxy in front of the moto server that makes chosen AWS calls fail, slow, drop or kill.

Point ``AWS_ENDPOINT_URL`` at it. A fault matches ``"METHOD /path?query"`` (and
optionally the body, e.g. ``Action=Publish`` for SNS) by regular expression and
applies a number of times, or at random with a seeded probability. ``kill``
calls back (to SIGKILL a flow process) before the request is forwarded, so a
test can stop a real run exactly at a write boundary; ``after`` forwards the
request, calls back, and only then answers, so a concurrent writer lands
exactly between a run's read and its write (``proxy.on(method, path, action)``).
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse

from local.loopback import LoopbackServer, QuietHandler, read_body


@dataclass
class Fault:
    request: str
    """Regular expression searched in ``"METHOD /path?query"``."""
    action: str = "fail"
    """``fail`` (answer ``status``/``code``), ``slow`` (wait ``seconds``, then forward), ``drop`` (close),
    ``kill`` (call ``on_kill``, then close), ``after`` (forward, call ``then``, answer)."""
    body: str | None = None
    status: int = 503
    code: str = "SlowDown"
    times: int = 1
    """How many matching requests it applies to; 0 means every one."""
    skip: int = 0
    """Let this many matching requests through first (kill at the third ledger write...)."""
    probability: float = 1.0
    seconds: float = 0.0
    on_kill: Callable[[], None] | None = None
    then: Callable[[], None] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    """Set once ``then`` has run (or once ``on_kill`` has)."""
    applied: int = 0

    def matches(self, line: str, body: bytes) -> bool:
        if self.times and self.applied >= self.times:
            return False
        if not re.search(self.request, line):
            return False
        if self.body is not None and re.search(self.body.encode(), body) is None:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        return True


def _error_body(path: str, code: str) -> bytes:
    message = f"injected fault {code}"
    if path.startswith("/2020-05-31/") or path == "/":
        return (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            "</Error><RequestId>fault</RequestId></ErrorResponse>"
        ).encode()
    return f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault</RequestId></Error>".encode()


HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}


class FaultProxy(LoopbackServer):
    """``with FaultProxy(moto_url) as proxy: proxy.add(Fault(...)); proxy.on("PUT", path, act); proxy.url``."""

    def __init__(self, upstream: str, seed: int = 0) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str]] = []
        """``("METHOD /path?query", action)`` per request, ``forward`` when no fault applied."""
        self._random = random.Random(seed)
        super().__init__()

    @property
    def url(self) -> str:
        return self.base_url

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def on(self, method: str, path: str, action: Callable[[], None], times: int = 1) -> threading.Event:
        """Run ``action`` after forwarding the next ``times`` requests for exactly ``path``, before answering."""
        request = rf"^{re.escape(method.upper())} {re.escape(path)}(\?|$)"
        return self.add(Fault(request, action="after", then=action, times=times)).done

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def _choose(self, line: str, body: bytes) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(line, body) and self._random.random() < fault.probability:
                    fault.applied += 1
                    self.log.append((line, fault.action))
                    return fault
            self.log.append((line, "forward"))
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                body = read_body(self)
                fault = proxy._choose(f"{self.command} {self.path}", body)
                if fault is not None and fault.action in ("kill", "drop"):
                    if fault.action == "kill" and fault.on_kill:
                        fault.on_kill()
                        fault.done.set()
                    self.close_connection = True
                    return
                if fault is not None and fault.action == "fail":
                    payload = _error_body(urlparse(self.path).path, fault.code)
                    self._answer(fault.status, "", [("Content-Type", "application/xml")], payload)
                    return
                if fault is not None and fault.action == "slow":
                    time.sleep(fault.seconds)
                status, reason, headers, data = self._forward(body)
                if fault is not None and fault.action == "after" and fault.then:
                    try:
                        fault.then()
                    finally:
                        fault.done.set()
                self._answer(status, reason, headers, data)

            def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
                target = urlparse(proxy.upstream)
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    answer = upstream.getresponse()
                    return answer.status, answer.reason, answer.getheaders(), answer.read()
                finally:
                    upstream.close()

            def _answer(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status, reason or None)
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP | {"transfer-encoding", "content-length"}:
                        self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                else:
                    length = next((v for k, v in headers if k.lower() == "content-length"), None)
                    if length is not None:
                        self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler
