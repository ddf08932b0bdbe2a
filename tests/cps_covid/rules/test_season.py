"""Resets, the season calendar and closing a season, on tables built in code (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from cps_covid.errors import InputError
from cps_covid.rules import season, season_calendar

DAYS = ["20220608", "20220609"]


@pytest.fixture
def schools(make_schools):
    """A history of DAYS whose season so far is ``cases`` per school."""
    return lambda **cases: make_schools(DAYS, {sid: [n, 0] for sid, n in cases.items()})


def test_a_collapse_of_the_season_totals_is_a_reset_and_corrections_are_not(schools, make_totals) -> None:
    history = schools(**{"609772": 40, "610212": 30})
    assert season.is_reset(history, make_totals(**{"609772": 5, "610212": 3}))  # 8 of 70
    assert not season.is_reset(history, make_totals(**{"609772": 39, "610212": 30}))  # one removed
    assert season.is_reset(history, make_totals())  # nothing listed where the season counts 70


def test_an_empty_feed_on_an_empty_season_is_a_day_of_zeros(schools, make_totals) -> None:
    assert not season.is_reset(schools(**{"609772": 0}), make_totals())


def test_a_small_season_never_looks_like_a_reset(schools, make_totals) -> None:
    assert not season.is_reset(schools(**{"609772": 10}), make_totals(**{"609772": 1}))


def test_the_reset_message_says_what_and_how_to_close(schools, make_totals) -> None:
    text = season.reset_message(schools(**{"609772": 40}), make_totals(), "rerun with new_season=NAME")
    assert "the feed lists no case at all where the history counts 40 this season" in text
    assert "Nothing was written" in text and "rerun with new_season=NAME, NAME naming the season" in text


def test_the_calendar_closes_a_reset_near_a_seasons_first_day() -> None:
    calendar = season_calendar.parse_calendar("Summer_22:2022-06-14, SY2122:2021-08-30")
    assert [s.name for s in calendar] == ["SY2122", "Summer_22"]  # in date order
    assert season_calendar.calendar_close(calendar, date(2022, 6, 16), 7) == ("SY2122", calendar[1])
    assert season_calendar.calendar_close(calendar, date(2021, 8, 27), 7) == ("preSY2122", calendar[0])
    assert season_calendar.calendar_close(calendar, date(2022, 7, 1), 7) is None


@pytest.mark.parametrize(
    ("text", "says"), [("SY2223:08-18", "is not NAME:YYYY-MM-DD"), ("2223:2022-08-18", "use letters")]
)
def test_a_malformed_calendar_is_refused_naming_the_item(text: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        season_calendar.parse_calendar(text)


def test_closing_a_season_keeps_each_schools_season_so_far_before_the_days(make_schools) -> None:
    history = make_schools(DAYS, {"609772": [3, 2]}, carry_overs={"preSY2122": {"609772": 10}})
    history["gTotal"] += 10
    closed = season.close_season(history, "SY2122")
    assert closed.columns.tolist()[8:11] == ["preSY2122", "SY2122", DAYS[0]]
    assert closed["SY2122"].tolist() == [5] and season.last_day(closed) == date(2022, 6, 9)
    with pytest.raises(InputError, match="already has a column SY2122"):
        season.close_season(closed, "SY2122")
