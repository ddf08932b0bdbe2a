"""The local stack's schedule (pure): one cron tick per replayed day, and the replay starting on a tick."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from local.stack import cron_for, replay_clock


@pytest.mark.parametrize(
    ("minutes", "cron"), [(2, "*/2 * * * *"), (1, "*/1 * * * *"), (30, "*/30 * * * *"), (0.5, "* * * * * */30")]
)
def test_the_update_runs_once_per_replayed_day(minutes: float, cron: str) -> None:
    assert cron_for(minutes) == cron


@pytest.mark.parametrize("minutes", [7, 0.7, 0])
def test_a_day_that_does_not_divide_an_hour_is_refused(minutes: float) -> None:
    with pytest.raises(ValueError, match="minutes per day"):
        cron_for(minutes)


def test_the_first_day_starts_on_the_first_tick_after_the_deploy() -> None:
    clock = replay_clock(date(2021, 9, 13), 2, datetime(2026, 12, 2, 0, 33, 50, tzinfo=UTC), margin_seconds=20)
    tick = datetime(2026, 12, 2, 0, 36, tzinfo=UTC)  # 00:34:10 rounded up to an even minute
    assert clock.started == tick - timedelta(seconds=20)  # the tick falls a sixth into the day
    assert clock.day(tick - timedelta(seconds=1)) == clock.day(tick + timedelta(seconds=1)) == date(2021, 9, 13)
    assert clock.day(datetime(2026, 12, 2, 0, 36, 5, tzinfo=UTC)) == date(2021, 9, 13)
    assert clock.day(datetime(2026, 12, 2, 0, 38, 5, tzinfo=UTC)) == date(2021, 9, 14)
