"""A real ``prefect worker start``, for the local stack and the deployment tests (process or ECS pool)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cps_covid.waiting import stop

ROOT = Path(__file__).resolve().parents[1]
PROCESS_POOL = "cps-covid-process"


def worker_command(pool: str = PROCESS_POOL, worker_type: str = "process") -> list[str]:
    return [str(Path(sys.executable).with_name("prefect")), "worker", "start", "--pool", pool, "--type", worker_type]


@contextmanager
def prefect_worker(
    env: Mapping[str, str],
    log: Path,
    *,
    show_log: bool = True,
    pool: str = PROCESS_POOL,
    worker_type: str = "process",
) -> Iterator[subprocess.Popen]:
    """The worker with ``env``, polling every second; its log (the tail) printed when it stops."""
    env = dict(env) | {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    with log.open("w") as out:
        process = subprocess.Popen(
            worker_command(pool, worker_type),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop(process)
        if show_log:
            print(log.read_text()[-4000:])
