"""The local stack's schedule (pure): one cron tick per replayed day, and the replay starting on a tick."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from local.stack import cron_for, replay_clock, watch_cron_for


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


@pytest.mark.parametrize(("minutes", "cron"), [(0.5, "* * * * * */15"), (2, "* * * * * */20"), (5, "* * * * * */30")])
def test_the_watch_polls_about_six_times_a_replayed_day(minutes: float, cron: str) -> None:
    assert watch_cron_for(minutes) == cron


def test_each_replayed_day_changes_once_at_its_own_random_moment() -> None:
    from cps_covid.rules.clock import ReplayClock
    from local.season_replay import CHANGES_BETWEEN, change_at, day_shown

    start = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    clock = ReplayClock(date(2021, 9, 13), start, 2)
    moments = [change_at(date(2021, 9, 13) + timedelta(days=n)) for n in range(20)]
    assert all(CHANGES_BETWEEN[0] <= m < CHANGES_BETWEEN[1] for m in moments) and len(set(moments)) == 20
    assert change_at(date(2021, 9, 14)) == moments[1]  # the same on every replay
    second_day = start + timedelta(minutes=2)
    before, after = (second_day + timedelta(seconds=120 * m) for m in (moments[1] - 0.01, moments[1] + 0.01))
    assert day_shown(clock, second_day, clock.first_day) == date(2021, 9, 13)  # its first run sees no change
    assert day_shown(clock, before, clock.first_day) == date(2021, 9, 13)
    assert day_shown(clock, after, clock.first_day) == date(2021, 9, 14)
    assert day_shown(clock, start, clock.first_day) == date(2021, 9, 12)  # the seeded history's last day
