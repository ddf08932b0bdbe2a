"""What the deployment tests share: a real process worker on the process pool."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cps_covid.local.waiting import stop

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def process_worker(env: dict[str, str], log: Path) -> Iterator[None]:
    """``prefect worker start --pool cps-covid-process`` with ``env``, polling every second; its log shown after."""
    env = env | {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    prefect = Path(sys.executable).with_name("prefect")
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(prefect), "worker", "start", "--pool", "cps-covid-process", "--type", "process"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        stop(process)
        print(log.read_text()[-4000:])


@pytest.fixture(scope="session")
def start_worker():
    """``process_worker`` for the deployment modules' own fixtures."""
    return process_worker
