"""Which day a run updates: its ``as_of``, else the day of its scheduled time (or the local stack's replayed day)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cps_covid.rules.clock import ClockError, ReplayClock, today, update_day, zone

START = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)


def test_without_a_replay_clock_it_is_today_in_the_timezone() -> None:
    assert today("", START, "UTC") == date(2026, 12, 2)
    assert today("", START, "America/Chicago") == date(2026, 12, 1)  # 00:30 UTC is 18:30 the day before


CHICAGO_MIDNIGHT = datetime(2021, 9, 15, tzinfo=zone("America/Chicago"))


@pytest.mark.parametrize(
    ("scheduled", "day"),
    [(CHICAGO_MIDNIGHT - timedelta(seconds=1), date(2021, 9, 14)), (CHICAGO_MIDNIGHT, date(2021, 9, 15))],
)
def test_a_run_updates_the_day_it_was_scheduled_for_whenever_it_starts(scheduled: datetime, day: date) -> None:
    """The rule takes no start time at all: a run started a second early or an hour late updates its cron's day."""
    assert update_day(None, scheduled, "", "America/Chicago") == day
    assert update_day(None, scheduled.astimezone(UTC), "", "America/Chicago") == day


def test_a_given_as_of_wins_over_the_schedule() -> None:
    assert update_day(date(2021, 9, 1), CHICAGO_MIDNIGHT, "", "America/Chicago") == date(2021, 9, 1)


def test_the_timezone_setting_decides_the_day() -> None:
    assert update_day(None, CHICAGO_MIDNIGHT, "", "Asia/Tokyo") == date(2021, 9, 15)
    assert update_day(None, CHICAGO_MIDNIGHT, "", "America/Los_Angeles") == date(2021, 9, 14)


def test_an_unknown_timezone_names_the_setting() -> None:
    with pytest.raises(ClockError, match="timezone 'America/Chicgo' is not a tz database name"):
        update_day(None, START, "", "America/Chicgo")


def test_with_a_replay_clock_the_scheduled_instant_picks_the_replayed_day() -> None:
    spec = "2021-09-13@2026-12-02T00:30:00Z/2"
    assert update_day(None, START + timedelta(minutes=2) - timedelta(seconds=1), spec, "UTC") == date(2021, 9, 13)
    assert update_day(None, START + timedelta(minutes=2), spec, "UTC") == date(2021, 9, 14)


def test_the_replayed_day_advances_one_day_per_period_and_never_runs_before_its_first_day() -> None:
    spec = "2021-09-13@2026-12-02T00:30:00Z/2"
    assert today(spec, START - timedelta(minutes=5), "UTC") == date(2021, 9, 13)
    assert today(spec, START, "UTC") == date(2021, 9, 13)
    assert today(spec, START + timedelta(minutes=1, seconds=59), "UTC") == date(2021, 9, 13)
    assert today(spec, START + timedelta(minutes=2), "UTC") == date(2021, 9, 14)
    assert today(spec, START + timedelta(minutes=21), "UTC") == date(2021, 9, 23)


def test_a_clock_reads_back_as_it_is_written() -> None:
    clock = ReplayClock(date(2021, 9, 13), START, 0.5)
    assert str(clock) == "2021-09-13@2026-12-02T00:30:00Z/0.5" and ReplayClock.parse(str(clock)) == clock


@pytest.mark.parametrize("spec", ["2021-09-13", "2021-09-13@soon/2", "2021-13-01@2026-12-02T00:30:00Z/2", "x@y/0"])
def test_a_malformed_clock_names_the_setting_and_the_form(spec: str) -> None:
    with pytest.raises(ClockError, match=r"replay_clock .* FIRST_DAY@START_UTC/MINUTES_PER_DAY|must be positive"):
        ReplayClock.parse(spec)


def test_the_time_of_day_runs_from_zero_to_one_within_each_replayed_day() -> None:
    clock = ReplayClock(date(2021, 9, 13), START, 2)
    assert clock.time_of_day(START) == 0.0
    assert clock.time_of_day(START + timedelta(seconds=30)) == 0.25
    assert clock.time_of_day(START + timedelta(minutes=2, seconds=90)) == 0.75  # 2021-09-14, three quarters in
    assert clock.time_of_day(START - timedelta(minutes=5)) == 0.0
