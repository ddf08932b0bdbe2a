"""Which day an update is for when no ``as_of`` is given: today in Chicago, or the local stack's replay day.

The local stack (``make up``) plays a past season forward, one day every few
minutes; its feed server and its cron runs must agree on the day, so both read
the same ``replay_clock`` setting through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cps_covid.errors import CpsCovidError


class ClockError(CpsCovidError):
    """``replay_clock`` is not ``YYYY-MM-DD@YYYY-MM-DDTHH:MM:SSZ/MINUTES``."""


@dataclass(frozen=True)
class ReplayClock:
    """``first_day`` began at ``started`` (UTC) and each day lasts ``minutes_per_day`` wall-clock minutes."""

    first_day: date
    started: datetime
    minutes_per_day: float

    @classmethod
    def parse(cls, text: str) -> ReplayClock:
        try:
            day, rest = text.split("@")
            started, minutes = rest.rsplit("/", 1)
            clock = cls(
                date.fromisoformat(day),
                datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(UTC),
                float(minutes),
            )
        except ValueError as err:
            raise ClockError(
                f"replay_clock {text!r} is not FIRST_DAY@START_UTC/MINUTES_PER_DAY "
                f"(e.g. 2021-09-13@2026-12-02T00:40:00Z/2): {err}"
            ) from None
        if clock.minutes_per_day <= 0:
            raise ClockError(f"replay_clock {text!r}: minutes per day must be positive")
        return clock

    def __str__(self) -> str:
        return f"{self.first_day}@{self.started:%Y-%m-%dT%H:%M:%SZ}/{self.minutes_per_day:g}"

    def day(self, at: datetime) -> date:
        """The replayed day at wall-clock ``at`` (never before ``first_day``)."""
        elapsed = max((at - self.started).total_seconds(), 0.0)
        return self.first_day + timedelta(days=int(elapsed // (self.minutes_per_day * 60)))


def today(replay_clock: str, now: datetime) -> date:
    """``now``'s date (``now`` in the configured timezone), or the replayed day when a replay clock is set."""
    return ReplayClock.parse(replay_clock).day(now) if replay_clock else now.date()
