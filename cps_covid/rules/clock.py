"""Which day a run updates: the one rule its name, its body, its summary and its mail share.

A run given ``as_of`` updates that day. Any other run updates the day of its
*scheduled* time in the configured timezone (``settings.timezone``), whenever it
actually starts: a worker may start a cron run half a second early or minutes
late, and a run named for one day must never update another. A manual run is
scheduled when it is created, so it updates today.

The local stack (``make up``) plays a past season forward, one day every few
minutes; its feed server and its cron runs must agree on the day, so both read
the same ``replay_clock`` setting through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

    def time_of_day(self, at: datetime) -> float:
        """How far into its replayed day wall-clock ``at`` is, from 0 (midnight) to 1."""
        elapsed = max((at - self.started).total_seconds(), 0.0)
        return (elapsed % (self.minutes_per_day * 60)) / (self.minutes_per_day * 60)


def zone(timezone: str) -> ZoneInfo:
    """The configured timezone (``settings.timezone``); a name the tz database does not know stops."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ClockError(f"timezone {timezone!r} is not a tz database name (e.g. America/Chicago)") from None


def today(replay_clock: str, now: datetime, timezone: str) -> date:
    """The day at the instant ``now`` in ``timezone``, or the replayed day when a replay clock is set."""
    return ReplayClock.parse(replay_clock).day(now) if replay_clock else now.astimezone(zone(timezone)).date()


def update_day(as_of: date | None, scheduled: datetime, replay_clock: str, timezone: str) -> date:
    """The day a run updates: its ``as_of``, else the day of its scheduled time (never of when it started)."""
    return as_of or today(replay_clock, scheduled, timezone)
