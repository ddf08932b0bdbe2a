"""The docker CLI, for the tests that run the image `make image` builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

IMAGE = "cps-covid-etl:latest"


def docker(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def locked(lock: Path, command: list[str]) -> list[str]:
    """``command`` under ``flock`` on ``lock``, held by flock alone and released when the command ends.

    ``-o`` closes the lock's descriptor in the command: ``make image`` starts
    dockerd when no daemon answers, and a daemon that inherited the descriptor
    would hold the lock for as long as it runs, so the next worker's build
    waited forever (CI, stop 21: 30 minutes, then the ECS tests errored).
    """
    return ["flock", "-o", str(lock), *command]
