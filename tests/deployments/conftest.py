"""What the deployment tests share: a real worker, and the image `make image` builds."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from containers import IMAGE

from cps_covid.local.feed_server import FeedServer, Route
from cps_covid.local.worker import prefect_worker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def start_worker():
    """``prefect_worker`` for the deployment modules' own fixtures."""
    return prefect_worker


@pytest.fixture(scope="session")
def image() -> str:
    """``make image``, once per session (seconds when the base and the wheelhouse are cached)."""
    started = time.monotonic()
    done = subprocess.run(["make", "image"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    print(f"make image: {time.monotonic() - started:.0f} s")
    return IMAGE


@pytest.fixture(scope="module")
def source() -> Iterator[FeedServer]:
    """The district's feed on loopback: the bundled 2021-09-23 feed at ``/feed.csv``; a module adds routes."""
    with FeedServer() as server:
        server.route("/feed.csv", Route((ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()))
        yield server
