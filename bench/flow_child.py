"""The process ``bench.flow_overhead`` starts: imports the flow, then runs it several times.

Runs, each on a freshly reset emulated account seeded with the real history
(so every run does the same work): the first orchestrated run in the process
(cold), then warm orchestrated runs alternating with the same flow body whose
tasks are called as plain functions (``task.fn``, run loggers disabled, no
Prefect run). Prints one JSON line; the parent reads it.

Environment: ``BENCH_SPAWNED_AT`` (parent's clock when it started this process),
``BENCH_MOTO_ENDPOINT``, ``BENCH_RUNS`` (orchestrated/plain pattern), and what
the flow itself reads (``PREFECT_API_URL``, ``CPS_COVID_*``).
"""

from __future__ import annotations

import time

STARTED_AT = time.time()  # first line this process runs after the interpreter and site are up

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import Any  # noqa: E402

Record = Callable[[str, float], None]


class Timed:
    """A task called through Prefect as usual, with the caller's wall time recorded."""

    def __init__(self, task: Any, record: Record) -> None:
        self.task, self.record = task, record

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.task(*args, **kwargs)
        finally:
            self.record(self.task.name, time.perf_counter() - started)

    def with_options(self, **options: Any) -> Timed:
        return Timed(self.task.with_options(**options), self.record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)


class Plain(Timed):
    """The task's own function, called directly: no task run, no state, no API."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.task.fn(*args, **kwargs)
        finally:
            self.record(self.task.name, time.perf_counter() - started)

    def with_options(self, **options: Any) -> Plain:
        return self


@contextmanager
def tasks_replaced(kind: type[Timed], record: Record) -> Iterator[None]:
    """Every task bound in a ``flows.*`` or ``tasks.*`` module replaced by ``kind`` for the duration."""
    from prefect import Task

    replaced = []
    for name, module in list(sys.modules.items()):
        if not name.startswith(("flows.", "tasks.")) or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if isinstance(value, Task):
                replaced.append((module, attribute, value))
                setattr(module, attribute, kind(value, record))
    try:
        yield
    finally:
        for module, attribute, value in replaced:
            setattr(module, attribute, value)


def fresh_account(endpoint: str) -> None:
    """Empty the emulator, provision the bucket, CDN and topic again and seed the real 2021-09-22 history."""
    from local.aws_emulator import Emulated, provision, seed_history
    from local.demo import HISTORY_DIR

    Emulated(endpoint, "", "", "").reset()
    emulated = provision(endpoint)
    seed_history(emulated, HISTORY_DIR)
    os.environ.update(emulated.environment())


def task_runs(flow_run_id: Any, expected: int, deadline: float = 20.0) -> list[dict]:
    """The flow run's task runs as the API recorded them (waits for their final states to arrive)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    until = time.monotonic() + deadline
    runs: list = []
    with get_client(sync_client=True) as client:
        while time.monotonic() < until:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if len(runs) >= expected and all(r.end_time is not None for r in runs):
                break
            time.sleep(0.25)
    return [
        {
            # "Fetch the district's feed-3fa", or a run name of its own: "Archive the previous day"
            "name": r.name.split(": ")[0].rsplit("-", 1)[0],
            "run_s": r.total_run_time.total_seconds() if r.total_run_time else None,
            "state": r.state_name,
        }
        for r in runs
    ]


class RetryCounter(logging.Handler):
    """Counts the API calls Prefect's client retried (it logs each retry at debug level)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retryable" in record.getMessage():
            self.count += 1


def main() -> int:
    spawned = float(os.environ["BENCH_SPAWNED_AT"])
    endpoint = os.environ["BENCH_MOTO_ENDPOINT"]
    pattern = os.environ.get("BENCH_RUNS", "orchestrated,orchestrated,plain,orchestrated,plain").split(",")

    started = time.perf_counter()
    from flows.update import apply_update, run_update

    imports = time.perf_counter() - started

    from prefect.logging import disable_run_logger

    from local.demo import AS_OF

    retries = RetryCounter()
    client_log = logging.getLogger("prefect.client")
    client_log.addHandler(retries)
    client_log.setLevel(logging.DEBUG)

    runs = []
    for kind in pattern:
        fresh_account(endpoint)
        calls: list[tuple[str, float]] = []

        def record(name: str, seconds: float, calls: list = calls) -> None:
            calls.append((name, seconds))

        started = time.perf_counter()
        if kind == "plain":
            with tasks_replaced(Plain, record), disable_run_logger():
                summary = apply_update(AS_OF, None, False, None)
            wall = time.perf_counter() - started
            runs.append({"kind": kind, "wall_s": wall, "calls": calls, "completed": bool(summary.get("written"))})
            continue
        retried_before = retries.count
        with tasks_replaced(Timed, record):
            state = run_update(as_of=AS_OF)
        wall = time.perf_counter() - started
        if not state.is_completed():
            raise RuntimeError(f"the flow run ended {state.name}: {state.message}")
        runs.append(
            {
                "kind": kind,
                "wall_s": wall,
                "calls": calls,
                "completed": True,
                "state": state.name,
                "api_retries": retries.count - retried_before,
                "task_runs": task_runs(state.state_details.flow_run_id, len(calls)),
            }
        )
    print(
        json.dumps(
            {
                "process_start_s": STARTED_AT - spawned,
                "imports_s": imports,
                "runs": runs,
                "done_at": time.time(),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
