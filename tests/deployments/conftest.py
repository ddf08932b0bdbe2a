"""What the deployment tests share: a real worker, and the image `make image` builds."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from containers import IMAGE, locked

from local.feed_server import FeedServer, Route
from local.worker import prefect_worker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def start_worker():
    """``prefect_worker`` for the deployment modules' own fixtures."""
    return prefect_worker


IMAGE_LOCK = ROOT / ".cache" / "make-image.lock"
_image_build: list[tuple[subprocess.Popen, float, Path]] = []


def _start_image_build(worker: str = "") -> None:
    """``make image`` under a lock: each pytest-xdist worker asks, one builds, the next finds it cached."""
    IMAGE_LOCK.parent.mkdir(exist_ok=True)
    log_path = ROOT / ".cache" / f"make-image{'-' + worker if worker else ''}.log"
    with log_path.open("wb") as log:
        build = subprocess.Popen(locked(IMAGE_LOCK, ["make", "image"]), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    _image_build.append((build, time.monotonic(), log_path))


def _worker(config: pytest.Config) -> str:
    return str(getattr(config, "workerinput", {}).get("workerid", ""))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start ``make image`` as soon as the selected tests are known, when one of them needs it.

    On a fresh machine the build (a Debian base, a wheelhouse, the image) takes
    minutes, mostly downloads and unpacking: it runs beside the tests that come
    before the first one that needs the image, instead of in front of it.
    """
    needs_image = any("image" in getattr(item, "fixturenames", ()) for item in session.items)
    worker = _worker(session.config)  # under pytest-xdist every worker collects everything: the first builds
    if needs_image and worker in ("", "gw0") and not session.config.option.collectonly and not _image_build:
        _start_image_build(worker)


@pytest.fixture(scope="session")
def image(pytestconfig: pytest.Config) -> str:
    """The image ``make image`` builds, once per session (seconds when the base and the wheelhouse are cached)."""
    if not _image_build:
        _start_image_build(_worker(pytestconfig))
    build, started, log_path = _image_build[0]
    try:
        outcome = f"exited {build.wait(timeout=1200)}"
    except subprocess.TimeoutExpired:
        build.kill()
        outcome = "did not finish in 20 minutes"
    tail = log_path.read_text(errors="replace")[-4000:]
    assert build.returncode == 0, f"make image {outcome}; {log_path} ends:\n{tail}"
    print(f"make image: finished {time.monotonic() - started:.0f} s after it started")
    return IMAGE


@pytest.fixture(scope="module")
def source() -> Iterator[FeedServer]:
    """The district's feed on loopback: the bundled 2021-09-23 feed at ``/feed.csv``; a module adds routes."""
    with FeedServer() as server:
        server.route("/feed.csv", Route((ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()))
        yield server
