"""A loopback HTTP proxy in front of the moto server that can act at a known point of a run (tests).

Point a flow's ``AWS_ENDPOINT_URL`` at the proxy and register an action for a
request (``proxy.on("GET", "/bucket/key", writer)``): the proxy forwards the
request, runs the action, and only then answers the flow. A concurrent writer
therefore lands exactly between the flow's read and its write, over real
sockets, without patching anything.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


@dataclass
class Hook:
    method: str
    path: str
    action: Callable[[], None]
    times: int
    done: threading.Event


class AwsProxy:
    """``with AwsProxy(moto_url) as proxy: proxy.on("PUT", "/bucket/key", action); proxy.url``."""

    def __init__(self, upstream: str) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.hooks: list[Hook] = []
        self.requests: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> AwsProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def on(self, method: str, path: str, action: Callable[[], None], times: int = 1) -> threading.Event:
        """Run ``action`` after forwarding the next ``times`` matching requests, before answering them."""
        hook = Hook(method.upper(), path, action, times, threading.Event())
        with self._lock:
            self.hooks.append(hook)
        return hook.done

    def _take_hook(self, method: str, path: str) -> Hook | None:
        with self._lock:
            self.requests[(method, path)] += 1
            for hook in self.hooks:
                if hook.times > 0 and hook.method == method and hook.path == path:
                    hook.times -= 1
                    return hook
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = bytearray()
                    while True:
                        size_line = self.rfile.readline()
                        raw += size_line
                        size = int(size_line.split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while True:
                                trailer = self.rfile.readline()
                                raw += trailer
                                if trailer in (b"\r\n", b"\n", b""):
                                    return bytes(raw)
                        raw += self.rfile.read(size + 2)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                method, path = self.command, urlparse(self.path).path
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in {"connection", "keep-alive"}}
                    connection.request(method, self.path, body=body or None, headers=headers)
                    answer = connection.getresponse()
                    payload = answer.read()
                    status, reason, answer_headers = answer.status, answer.reason, answer.getheaders()
                finally:
                    connection.close()
                hook = proxy._take_hook(method, path)
                if hook is not None:
                    try:
                        hook.action()
                    finally:
                        hook.done.set()
                self.send_response(status, reason)
                for name, value in answer_headers:
                    if name.lower() in HOP_BY_HOP or (name.lower() == "content-length" and method != "HEAD"):
                        continue
                    self.send_header(name, value)
                if method != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler
