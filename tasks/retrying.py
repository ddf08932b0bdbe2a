"""Retry rules shared by the tasks that talk to outside systems."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from cps_covid.errors import SourceError

RETRY_AFTER_CAP_SECONDS = 120.0
"""A Retry-After longer than this is cut short: the run's total time stays bounded."""


def planned_delay(retry_delay_seconds: Any, runs_so_far: int) -> float:
    """The delay Prefect waits before the next attempt, as its task engine picks it from the task's options."""
    if not retry_delay_seconds:
        return 0.0
    if isinstance(retry_delay_seconds, Sequence):
        return float(retry_delay_seconds[min(max(runs_so_far - 1, 0), len(retry_delay_seconds) - 1)])
    return float(retry_delay_seconds)


def extra_wait(retry_after: float | None, delay: float) -> float:
    """What to wait on top of Prefect's own retry delay so the source's Retry-After is honoured, and only once."""
    if not retry_after:
        return 0.0
    return max(min(retry_after, RETRY_AFTER_CAP_SECONDS) - delay, 0.0)


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry timeouts, 5xx and 429 from the district; never a 4xx or bad data.

    A Retry-After (429/503) is a minimum: the condition waits only what Prefect's delay (no jitter on these
    tasks, so it is known here) falls short of it.
    """
    try:
        state.result()
    except SourceError as err:
        if err.transient:
            time.sleep(extra_wait(err.retry_after, planned_delay(task.retry_delay_seconds, task_run.run_count)))
        return err.transient
    except Exception:
        return False
    return False
