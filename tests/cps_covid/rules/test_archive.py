"""The case archive's rules: which day, which page, the index (pure)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from cps_covid.errors import InputError
from cps_covid.rules import archive, render


def test_the_first_run_of_a_day_archives_the_last_day_with_cases(make_schools) -> None:
    schools = make_schools(["20210921", "20210922"], {"609772": [1, 2], "610212": [0, 3], "609695": [4, 0]})
    found = archive.day_to_archive(schools, date(2021, 9, 23))
    assert found == archive.ArchivedDay(date(2021, 9, 22), 5, 2)
    assert found.index_key == "historical/2021-09.json"
    assert found.entry("https://cpscovid.com/") == {  # the body of the old archive query, absolute URL
        "cases": "5",
        "url": "https://cpscovid.com/historical/2021-09-22-cases.html",
    }
    assert archive.day_to_archive(schools, date(2021, 9, 26)).day == date(2021, 9, 22)  # after days without runs


def test_nothing_is_archived_later_in_the_day_on_a_backfill_or_after_a_quiet_day(make_schools) -> None:
    schools = make_schools(["20210921", "20210922"], {"609772": [1, 0], "610212": [2, 0]})
    assert archive.day_to_archive(schools, date(2021, 9, 23)) is None  # 09-22 had no case
    busy = make_schools(["20210922"], {"609772": [3]})
    assert archive.day_to_archive(busy, date(2021, 9, 22)) is None  # not the first run of the day
    assert archive.day_to_archive(busy, date(2021, 9, 20)) is None  # a backfill
    corrected = make_schools(["20210922"], {"609772": [-1]})
    assert archive.day_to_archive(corrected, date(2021, 9, 23)) is None  # only cases removed


def test_the_stored_page_is_recognised_by_its_date(make_schools) -> None:
    schools = make_schools(["20210922"], {"609772": [2], "610212": [0]})
    page = render.newcases_page(archive.day_cases(schools, date(2021, 9, 22)), date(2021, 9, 22), "https://x")
    assert archive.page_shows_day(page, date(2021, 9, 22), "https://x")
    assert not archive.page_shows_day(page, date(2021, 9, 21), "https://x")
    assert not archive.page_shows_day(b"<html>no title</html>", date(2021, 9, 22), "https://x")
    old = b'<title>CPS COVID new cases: Sep. 22, 2021</title><a href="school.html?name=ADDAMS">'  # before 2026-12
    assert not archive.page_shows_day(old, date(2021, 9, 22), "https://x")  # its links would be dead: rendered again
    assert not archive.page_shows_day(page, date(2021, 9, 22), "https://elsewhere.org")
    assert list(archive.day_cases(schools, date(2021, 9, 22))["CPS_School_ID"]) == ["609772"]


SITE = "https://cpscovid.com"


def test_a_month_index_gets_each_day_once_in_date_order_as_the_old_query_answered() -> None:
    first = archive.month_index_with(None, archive.ArchivedDay(date(2021, 9, 22), 74, 58), SITE)
    second = archive.month_index_with(first, archive.ArchivedDay(date(2021, 9, 21), 40, 30), SITE)
    assert json.loads(second) == {
        "2021-09-21": {"cases": "40", "url": "https://cpscovid.com/historical/2021-09-21-cases.html"},
        "2021-09-22": {"cases": "74", "url": "https://cpscovid.com/historical/2021-09-22-cases.html"},
    }
    assert list(json.loads(second)) == ["2021-09-21", "2021-09-22"]
    assert archive.month_index_with(second, archive.ArchivedDay(date(2021, 9, 22), 1, 1), SITE) is None
    assert archive.ArchivedDay(date(2021, 10, 1), 9, 4).index_key == "historical/2021-10.json"
    assert archive.month_index_key(date(2021, 12, 31)) == "historical/2021-12.json"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"{oops", "not valid JSON"), (b'[{"date": "2021-09-21"}]', "expected"), (b'{"2021-09-21": 4}', "expected")],
)
def test_a_broken_month_index_is_named_not_overwritten(payload: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=f"historical/2021-09.json: {reason}"):
        archive.month_index_with(payload, archive.ArchivedDay(date(2021, 9, 22), 1, 1), SITE)


def test_keys_follow_the_old_layout() -> None:
    assert archive.page_key(date(2021, 9, 22)) == "historical/2021-09-22-cases.html"
    assert archive.daily_feed_key(date(2021, 9, 22), "health-api-json") == "data/daily-json/2021-09-22.json"
    assert archive.daily_feed_key(date(2021, 9, 22), "case-list-csv") == "data/daily-json/2021-09-22.csv"
    assert archive.daily_feed_type("data/daily-json/2021-09-22.csv").startswith("text/csv")
    assert archive.daily_feed_type("data/daily-json/2021-09-22.json") == "application/json"
