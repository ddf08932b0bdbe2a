"""Retry rules shared by the tasks that talk to outside systems."""

from __future__ import annotations

from typing import Any

from cps_covid.errors import SourceError


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry timeouts, 5xx and 429 from the district; never a 4xx or bad data."""
    try:
        state.result()
    except SourceError as err:
        return err.transient
    except Exception:
        return False
    return False
