"""The docker CLI, for the tests that run the image `make image` builds."""

from __future__ import annotations

import subprocess

IMAGE = "cps-covid-etl:latest"


def docker(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
