"""Retry rules shared by the tasks that talk to outside systems."""

from __future__ import annotations

import time
from typing import Any

from cps_covid.errors import SourceError

RETRY_AFTER_CAP_SECONDS = 120.0
"""A Retry-After longer than this is cut short: the run's total time stays bounded."""


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry timeouts, 5xx and 429 from the district; never a 4xx or bad data."""
    try:
        state.result()
    except SourceError as err:
        if err.transient and err.retry_after:
            time.sleep(min(err.retry_after, RETRY_AFTER_CAP_SECONDS))  # the source asked for this wait (429/503)
        return err.transient
    except Exception:
        return False
    return False
