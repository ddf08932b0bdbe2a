"""The season's settings as rules (pure, no pandas: the settings import it): the district's calendar of season
starts, how near a start a reset of the totals must fall to close a season, and the longest gap zero-filled."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from cps_covid.errors import InputError

DISTRICT_SEASONS = "SY2122:2021-08-30,Summer_22:2022-06-14,SY2223:2022-08-18"
"""The district's season starts (``seasons``): a reset of its totals near one closes the season before it."""
SEASON_WINDOW_DAYS = 7
"""How many days from a season's first day a reset may fall to be closed by the calendar."""
MAX_GAP_DAYS = 14
"""A run this many days or fewer after the history's last day zero-fills the days between; later stops."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")


@dataclass(frozen=True)
class SeasonStart:
    name: str
    """The season that begins (``SY2223``); the one before it is closed into a column of its own name."""
    first_day: date


def parse_calendar(text: str) -> list[SeasonStart]:
    """``SY2122:2021-08-30,Summer_22:2022-06-14,...`` (the ``seasons`` setting), in date order."""
    starts = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        name, _, day = item.partition(":")
        try:
            first_day = date.fromisoformat(day.strip())
        except ValueError:
            raise InputError(f"setting seasons: {item!r} is not NAME:YYYY-MM-DD (e.g. SY2223:2022-08-18)") from None
        check_name(name.strip(), "setting seasons")
        starts.append(SeasonStart(name.strip(), first_day))
    return sorted(starts, key=lambda s: s.first_day)


def calendar_close(calendar: list[SeasonStart], as_of: date, window_days: int) -> tuple[str, SeasonStart] | None:
    """The carry-over column for a reset on ``as_of``, when a season starts within ``window_days`` of it.

    The column is named after the season that ended: the previous entry of the
    calendar, or ``pre<NAME>`` before the calendar's first season.
    """
    for at, start in enumerate(calendar):
        if abs((as_of - start.first_day).days) <= window_days:
            return (calendar[at - 1].name if at else f"pre{start.name}"), start
    return None


def check_name(name: str, what: str) -> None:
    if not _NAME.match(name) or name.isdigit():
        raise InputError(f"{what} {name!r}: use letters, digits and underscores, e.g. SY2223")


@dataclass(frozen=True)
class SeasonRules:
    """What a run does at the edges of a school year (from the settings; see ``season``)."""

    calendar: list[SeasonStart] = field(default_factory=list)
    window_days: int = SEASON_WINDOW_DAYS
    max_gap_days: int | None = MAX_GAP_DAYS
    """A run this many days or fewer after the history's last day zero-fills the days between; later stops."""

    @classmethod
    def of(
        cls, seasons: str, window_days: int = SEASON_WINDOW_DAYS, max_gap_days: int | None = MAX_GAP_DAYS
    ) -> SeasonRules:
        return cls(parse_calendar(seasons), window_days, max_gap_days)


@dataclass(frozen=True)
class Rerun:
    """How a stop message tells the person who ran this to run it again with an option."""

    command: str | None = None
    """``None``: the update flow (a deployment parameter); else the command line that was run."""

    def option(self, flag: str, parameter: str) -> str:
        if self.command is None:
            return f"rerun the update with {parameter} (cps-covid run {flag}, or a custom run in the Prefect UI)"
        return f"rerun {self.command} {flag}"
