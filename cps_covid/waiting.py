"""Wait for a condition with a deadline: how tests and local tools synchronise with real services."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], *, what: str, timeout: float = 120.0, every: float = 0.2) -> T:
    """Call ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(every)


def stop(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Terminate, wait up to ``timeout`` seconds, then kill: a local service never outlives what started it."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
