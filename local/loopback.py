"""The threaded HTTP server on 127.0.0.1 that every local stand-in (feed, proxy, social APIs) is built on.

A free port is taken when the object is made, so its URL is known before the
``with`` block starts serving; leaving the block stops the server and frees the
port. Subclasses give the request handler class.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not print a line per request (the stand-ins' tests read their own records)."""

    def log_message(self, *args: object) -> None:
        pass


class LoopbackServer:
    """``with Subclass(...) as server: server.base_url``; subclasses implement ``_handler``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body as sent: by Content-Length, or chunked (kept chunked, as botocore may stream uploads)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        raw = bytearray()
        while True:
            size_line = handler.rfile.readline()
            raw += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = handler.rfile.readline()
                    raw += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        return bytes(raw)
            raw += handler.rfile.read(size + 2)
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
