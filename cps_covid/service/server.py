"""Serve the subscription app with uvicorn: in the foreground (``cps-covid serve``) or on a loopback thread.

uvicorn is configured for a public endpoint behind a load balancer: no server
header, no access log (the app logs each request itself, without addresses),
small header and keep-alive limits, a bound on concurrent connections, and
``X-Forwarded-For`` believed only from ``trusted_proxies``.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from cps_covid.settings import Settings

MAX_CONNECTIONS = 200


def uvicorn_config(app: Any, settings: Settings, host: str = "127.0.0.1", port: int = 8080) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        server_header=False,
        access_log=False,
        log_config=None,
        lifespan="off",
        timeout_keep_alive=5,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=16 * 1024,
    )


def load_settings() -> Settings:
    """The flow's settings; the Prefect variable only when a Prefect API is configured (no ephemeral server)."""
    return Settings.load(use_prefect=bool(os.environ.get("PREFECT_API_URL")), require=("topic_arn",))


def serve(host: str, port: int) -> int:
    """``cps-covid serve``: run until SIGINT/SIGTERM (ECS stops tasks with SIGTERM)."""
    from cps_covid.service.app import create_app
    from cps_covid.service.logs import configure, log_event
    from cps_covid.systems import aws

    settings = load_settings()
    configure()
    app = create_app(settings, aws.client("sns", settings.aws_credentials_block))
    log_event("starting", host=host, port=port, site_origin=settings.site_origin)
    server = uvicorn.Server(uvicorn_config(app, settings, host, port))
    server.run()
    return 0 if server.started else 1


@contextmanager
def running(app: Any, settings: Settings, host: str = "127.0.0.1") -> Iterator[str]:
    """The app on a free loopback port in a background thread (tests, demo); yields its base URL."""
    from cps_covid.waiting import wait_for

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, settings, host, port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), what="uvicorn to start", timeout=30, every=0.02)
        if not server.started:
            raise RuntimeError("uvicorn did not start (see its log above)")
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        if thread.is_alive():
            print("uvicorn thread did not stop within 30 s", file=sys.stderr)
