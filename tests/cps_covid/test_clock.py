"""Which day a run without ``as_of`` updates: today, or the local stack's replayed day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cps_covid.clock import ClockError, ReplayClock, today

START = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)


def test_without_a_replay_clock_it_is_today() -> None:
    assert today("", START) == date(2026, 12, 2)


def test_the_replayed_day_advances_one_day_per_period_and_never_runs_before_its_first_day() -> None:
    spec = "2021-09-13@2026-12-02T00:30:00Z/2"
    assert today(spec, START - timedelta(minutes=5)) == date(2021, 9, 13)
    assert today(spec, START) == date(2021, 9, 13)
    assert today(spec, START + timedelta(minutes=1, seconds=59)) == date(2021, 9, 13)
    assert today(spec, START + timedelta(minutes=2)) == date(2021, 9, 14)
    assert today(spec, START + timedelta(minutes=21)) == date(2021, 9, 23)


def test_a_clock_reads_back_as_it_is_written() -> None:
    clock = ReplayClock(date(2021, 9, 13), START, 0.5)
    assert str(clock) == "2021-09-13@2026-12-02T00:30:00Z/0.5" and ReplayClock.parse(str(clock)) == clock


@pytest.mark.parametrize("spec", ["2021-09-13", "2021-09-13@soon/2", "2021-13-01@2026-12-02T00:30:00Z/2", "x@y/0"])
def test_a_malformed_clock_names_the_setting_and_the_form(spec: str) -> None:
    with pytest.raises(ClockError, match=r"replay_clock .* FIRST_DAY@START_UTC/MINUTES_PER_DAY|must be positive"):
        ReplayClock.parse(spec)
