"""A loopback HTTP proxy in front of the moto server that makes chosen AWS calls fail, slow, drop or kill.

Point ``AWS_ENDPOINT_URL`` at it. A fault matches ``"METHOD /path?query"`` (and
optionally the body, e.g. ``Action=Publish`` for SNS) by regular expression and
applies a number of times, or at random with a seeded probability. ``kill``
calls back (to SIGKILL a flow process) before the request is forwarded, so a
test can stop a real run exactly at a write boundary.
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


@dataclass
class Fault:
    request: str
    """Regular expression searched in ``"METHOD /path?query"``."""
    action: str = "fail"
    """``fail`` (answer ``status``/``code``), ``slow`` (wait ``seconds``, then forward), ``drop`` (close), ``kill``."""
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


@dataclass
class FaultProxy:
    upstream: str
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

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
        target = urlparse(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                line = f"{self.command} {self.path}"
                fault = proxy._choose(line, body)
                if fault is not None and fault.action == "kill":
                    if fault.on_kill:
                        fault.on_kill()
                    self.close_connection = True
                    return
                if fault is not None and fault.action == "drop":
                    self.close_connection = True
                    return
                if fault is not None and fault.action == "fail":
                    payload = _error_body(urlparse(self.path).path, fault.code)
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault is not None and fault.action == "slow":
                    time.sleep(fault.seconds)
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler
