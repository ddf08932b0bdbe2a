"""What the deployment tests share: a real process worker on the process pool."""

from __future__ import annotations

import pytest

from cps_covid.local.worker import process_worker


@pytest.fixture(scope="session")
def start_worker():
    """``process_worker`` for the deployment modules' own fixtures."""
    return process_worker
