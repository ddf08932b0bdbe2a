"""A source's Retry-After is waited once: topped up to over Prefect's own retry delay, never added to it."""

from __future__ import annotations

import pytest

from tasks.fetch import fetch_feed, look_up_new_schools
from tasks.retrying import RETRY_AFTER_CAP_SECONDS, extra_wait, planned_delay


def test_the_planned_delay_is_the_one_prefects_engine_picks_for_each_attempt() -> None:
    delays = fetch_feed.retry_delay_seconds
    assert [planned_delay(delays, runs) for runs in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 40.0]
    assert planned_delay(5, 2) == 5.0 and planned_delay(None, 1) == 0.0


@pytest.mark.parametrize("task", [fetch_feed, look_up_new_schools])
def test_the_fetches_have_no_jitter_so_their_delay_is_known(task) -> None:
    assert task.retry_jitter_factor is None


@pytest.mark.parametrize(
    ("retry_after", "delay", "extra"),
    [
        (None, 10.0, 0.0),  # no Retry-After: Prefect's backoff alone
        (3.0, 10.0, 0.0),  # asked for less than the backoff: nothing added
        (30.0, 10.0, 20.0),  # asked for more: topped up to exactly 30 s in all
        (600.0, 10.0, RETRY_AFTER_CAP_SECONDS - 10.0),  # capped
    ],
)
def test_retry_after_is_a_minimum_wait_not_an_extra_one(retry_after, delay, extra) -> None:
    assert extra_wait(retry_after, delay) == extra
    assert delay + extra == max(delay, min(retry_after or 0.0, RETRY_AFTER_CAP_SECONDS))
