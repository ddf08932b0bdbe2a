"""A real Prefect API server on loopback, started once for tests and local tools.

Cheaper than the ephemeral API per process (migrations run once) and the same
server an operator would use: flows, deployments, workers and automations all
talk to it over HTTP.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cps_covid.waiting import stop


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(home: Path) -> dict[str, str]:
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_API_SERVICES_LATE_RUNS_ENABLED": "false",
    }


def wait_healthy(api_url: str, process: subprocess.Popen, deadline_seconds: float, log: Path) -> None:
    """Return once ``/health`` answers; fail with the server's log if it exits or never does."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"prefect server not healthy within {deadline_seconds} s:\n{log.read_text()[-3000:]}")


@contextmanager
def prefect_server(
    home: Path, deadline_seconds: float = 180, settings: Mapping[str, str] | None = None, *, ui: bool = False
) -> Iterator[str]:
    """``prefect server start`` on 127.0.0.1 and a free port, ``settings`` (PREFECT_*) added; yields the API URL.

    ``ui``: serve the UI too, told its API's URL (else it calls the default port's, 4200, and cannot connect).
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | server_environment(home)
    if ui:
        env |= {
            "PREFECT_SERVER_UI_ENABLED": "true",
            "PREFECT_UI_API_URL": api_url,
            "PREFECT_UI_URL": api_url.removesuffix("/api"),
            "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        }
    env |= dict(settings or {})
    log = home / "server.log"
    prefect = Path(sys.executable).with_name("prefect")
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(api_url, process, deadline_seconds, log)
        yield api_url
    finally:
        stop(process)
