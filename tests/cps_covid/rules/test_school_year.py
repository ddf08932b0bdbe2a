"""The edges of a school year without a hand edit: empty first days, the season calendar, gaps.

The replays go through ``cps-covid merge``'s own path (``offline.merge_folder``:
both feed suites, the history suites, the merge, the output suites, the files
written and read back the next day), from the real history cut back to
2021-08-29, with each day's health-API feed derived from the real day columns.
On 2021-08-30 and 2021-08-31 the district had no case yet: the feed is ``[]``.
"""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from cps_covid.errors import GapError, InputError, NewSeasonError
from cps_covid.operations.offline import merge_folder
from cps_covid.rules import applying, history, inputs, merge, outputs, publish_plan, season_calendar
from cps_covid.rules.schema import GTOTAL, SCHOOL_ID, HistoryLayout, day_column
from local.season_replay import FIRST_DAY, LAST_HISTORY_DAY, feed_of, history_until, real_schools

ROOT = Path(__file__).resolve().parents[3]
REAL = ROOT / "data/history-2021-09-22"
LAST_DAY = LAST_HISTORY_DAY
BLAIR = "610087"
DAYS = [f"202106{d:02d}" for d in range(1, 11)]


def cut_back(real: pd.DataFrame, *, closed: bool) -> pd.DataFrame:
    """The history of 2021-08-29: closed into ``preSY2122`` (season total 0), or the season still open."""
    cut = history_until(real, FIRST_DAY - timedelta(days=1))
    return cut if closed else cut.drop(columns=["preSY2122"])


def write_history(schools: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "allCpsCovidData.csv").write_bytes(history.csv_bytes(schools))
    (folder / "CPStotals.csv").write_bytes(history.csv_bytes(merge.district_totals(schools)))
    return folder


def replay(real: pd.DataFrame, start: pd.DataFrame, tmp: Path, **options) -> tuple[Path, list[str]]:
    folder, events, day = write_history(start, tmp / "start"), [], FIRST_DAY
    while day <= LAST_DAY:
        fresh = tmp / f"{day}.json"
        fresh.write_bytes(feed_of(real, day))
        out = tmp / day.isoformat()
        publication = merge_folder(folder, fresh, day, out, ignore_ids=frozenset(), **options)
        events += [f"{day}: {e}" for e in publication.result.events]
        folder, day = out, day + timedelta(days=1)
    return folder, events


def expected_schools(real: pd.DataFrame) -> pd.DataFrame:
    """The real file with BLAIR's drift repaired onto preSY2122 (gTotal 1 under day columns summing to 2)."""
    fixed = real.copy()
    fixed.loc[fixed[SCHOOL_ID] == BLAIR, [GTOTAL, "preSY2122"]] = 2
    return fixed


def check_the_replay_is_the_real_file(real: pd.DataFrame, folder: Path) -> None:
    written = (folder / "allCpsCovidData.csv").read_bytes()
    assert written == history.csv_bytes(expected_schools(real))  # every day column, gTotal, windows, carry-over
    published = (REAL / "allCpsCovidData.csv").read_bytes().splitlines()
    differing = [n for n, (a, b) in enumerate(zip(written.splitlines(), published, strict=True)) if a != b]
    assert [published[n].split(b",")[0] for n in differing] == [b"BLAIR"]

    totals = pd.read_csv(folder / "CPStotals.csv")
    real_totals = pd.read_csv(REAL / "CPStotals.csv")
    assert (folder / "CPStotals.csv").read_bytes() == history.csv_bytes(merge.district_totals(expected_schools(real)))
    # the real CPStotals.csv drifted (the old process appended to it): one case short on 2021-08-26, nothing on
    # 2021-09-22; every other day's figure of the season is the real file's
    daily = totals.set_index("date")["daily"] != real_totals.set_index("date")["daily"]
    assert daily[daily].index.tolist() == [20210826, 20210922]


@pytest.mark.slow  # a whole season, a subprocess or a benchmark: not in make check
def test_the_real_season_replays_from_its_first_day_with_empty_feeds(tmp_path) -> None:
    real = real_schools()
    folder, events = replay(real, cut_back(real, closed=True), tmp_path)

    check_the_replay_is_the_real_file(real, folder)
    assert json.loads((tmp_path / "2021-08-30.json").read_bytes()) == []  # the first two days: nothing yet
    day_one = pd.read_csv(tmp_path / "2021-08-30/allCpsCovidData.csv")
    assert day_one.columns[-1] == "20210830" and day_one["20210830"].eq(0).all()
    assert not (tmp_path / "2021-08-30/notification.txt").exists()  # a day of zeros: nobody is mailed
    assert (tmp_path / "2021-09-01/notification.txt").exists()
    tags = [e.split(": ", 1)[1].split(" ")[0] for e in events]
    assert tags[0] == "[drift-repair]" and tags.count("[drift-repair]") == 1  # BLAIR, on the first day
    assert set(tags) <= {"[drift-repair]", "[outlier]", "[district-jump]"}  # no correction, no stop


@pytest.mark.slow  # a whole season, a subprocess or a benchmark: not in make check
def test_with_the_season_calendar_an_open_season_is_closed_on_its_first_day(tmp_path) -> None:
    real = real_schools()
    start = cut_back(real, closed=False)
    assert "preSY2122" not in start.columns and start[GTOTAL].sum() > 2000  # everything since 2020 still counted

    folder, events = replay(real, start, tmp_path)  # the district's calendar: SY2122 from 2021-08-30

    check_the_replay_is_the_real_file(real, folder)
    assert events[0] == (
        "2021-08-30: [new-season] DISTRICT (*): season closed into carry-over column preSY2122 by the season "
        "calendar: SY2122 starts 2021-08-30 and the district's totals reset on 2021-08-30"
    )
    assert not any("[correction]" in e for e in events)


def test_without_a_calendar_the_first_day_stops_and_the_manual_close_works(tmp_path) -> None:
    real = real_schools()
    folder = write_history(cut_back(real, closed=False), tmp_path / "start")
    fresh = tmp_path / "feed.json"
    fresh.write_bytes(feed_of(real, FIRST_DAY))
    with pytest.raises(NewSeasonError) as stopped:
        merge_folder(folder, fresh, FIRST_DAY, tmp_path / "out", seasons="")
    assert str(stopped.value).startswith("the feed lists no case at all where the history counts 2017 this season")
    assert f"rerun cps-covid merge --history {folder} --fresh {fresh} --as-of 2021-08-30" in str(stopped.value)
    assert not (tmp_path / "out").exists()

    closed = merge_folder(folder, fresh, FIRST_DAY, tmp_path / "out", seasons="", new_season="preSY2122")
    assert closed.result.season_closed == "preSY2122" and not closed.result.closed_by_calendar
    assert closed.result.schools["preSY2122"].sum() == 2017 + 1  # and BLAIR's drift repaired onto it
    assert closed.result.schools["20210830"].eq(0).all()


# --- the rules, on tables built in code ------------------------------------------------------------------


def feed_of_totals(make_totals, **totals: int) -> inputs.Feed:
    return inputs.Feed("health-api-json", make_totals(**totals), [])


def read(schools: pd.DataFrame) -> inputs.History:
    return inputs.read_history(history.csv_bytes(schools), None, ("h.csv", "t.csv"))


CALENDAR = season_calendar.SeasonRules.of("SY2122:2021-08-30,Summer_22:2022-06-14,SY2223:2022-08-18", 7, 14)


@pytest.mark.parametrize(
    ("as_of", "column"),
    [(date(2021, 8, 27), "preSY2122"), (date(2022, 6, 20), "SY2122"), (date(2022, 8, 25), "Summer_22")],
)
def test_a_reset_near_a_season_start_closes_the_season_that_ended(make_schools, make_totals, as_of, column) -> None:
    days = [day_column(as_of - timedelta(days=n)) for n in range(3, 0, -1)]
    schools = make_schools(days, {"609772": [40, 30, 0], "610212": [0, 0, 9]}, carry_overs={})
    result = applying.apply(feed_of_totals(make_totals, **{"609772": 1}), read(schools), as_of, rules=CALENDAR)
    assert (result.season_closed, result.closed_by_calendar) == (column, True)
    assert result.schools[column].tolist() == [70, 9] and result.changes["new_cases"].tolist() == [1]
    assert HistoryLayout.of(result.schools.columns).carry_overs == [column]
    subject, body = outputs.season_notice(result, as_of)
    assert subject == f"cps-covid: the season was closed into {column} ({as_of:%b. %d, %Y}), no action needed"
    assert f"Carry-over columns now: {column}." in body and "by the season calendar" in body
    manual = applying.apply(
        feed_of_totals(make_totals, **{"609772": 1}), read(schools), as_of, rules=CALENDAR, new_season="Mine"
    )
    assert outputs.season_notice(manual, as_of) is None  # closed by hand: the operator knows


def test_a_reset_far_from_any_season_start_stops_with_guidance(make_schools, make_totals) -> None:
    schools = make_schools(["20211014", "20211015"], {"609772": [40, 30]})
    with pytest.raises(NewSeasonError, match=r"reset its totals.*rerun the update with new_season=NAME"):
        applying.apply(feed_of_totals(make_totals, **{"609772": 1}), read(schools), date(2021, 10, 16), rules=CALENDAR)


def test_a_reset_whose_carry_over_exists_already_stops(make_schools, make_totals) -> None:
    schools = make_schools(["20220619"], {"609772": [60]}, carry_overs={"preSY2122": {}, "SY2122": {}})
    with pytest.raises(NewSeasonError, match="would close it into SY2122, which the history already has"):
        applying.apply(feed_of_totals(make_totals, **{"609772": 1}), read(schools), date(2022, 6, 20), rules=CALENDAR)


def test_an_empty_feed_agrees_with_a_season_without_cases(make_schools) -> None:
    schools = make_schools(DAYS, {"609772": [0] * 10, "610212": [0] * 10})
    empty = inputs.read_feed(b"[]", "today.json")
    result = applying.apply(empty, read(schools), date(2021, 6, 11), rules=CALENDAR)
    assert result.changes.empty and result.schools["20210611"].eq(0).all() and result.season_closed is None
    publication = outputs.build_publication(result, date(2021, 6, 11), pd.Timestamp("2021-06-11"), "https://x")
    assert publish_plan.SCHOOLS_KEY in publication.objects and publication.message is None


def test_an_empty_feed_while_the_season_has_cases_is_a_reset(make_schools) -> None:
    schools = make_schools(DAYS, {"609772": [0] * 9 + [3]})  # 3 cases: too few for the share rule, still a reset
    empty = inputs.read_feed(b"[]", "today.json")
    with pytest.raises(NewSeasonError, match="the feed lists no case at all where the history counts 3 this season"):
        applying.apply(empty, read(schools), date(2021, 6, 11), rules=CALENDAR)
    closed = applying.apply(empty, read(schools), date(2021, 6, 11), rules=CALENDAR, new_season="Spring_21")
    assert closed.schools["Spring_21"].tolist() == [3] and closed.changes.empty


def test_a_source_that_answers_nothing_stays_an_error() -> None:
    with pytest.raises(InputError, match="the feed is empty"):
        inputs.read_feed(b"", "today.json")


def test_a_gap_stops_before_zero_filling_and_says_how_to_confirm(make_schools, make_totals) -> None:
    schools = make_schools(DAYS, {"609772": [1] * 10})
    feed = feed_of_totals(make_totals, **{"609772": 12})
    fine = applying.apply(feed, read(schools), date(2021, 6, 24), rules=CALENDAR)  # 14 days after: zero-filled
    assert HistoryLayout.of(fine.schools.columns).days[-1] == "20210624" and fine.added_cases == 2
    with pytest.raises(GapError) as stopped:
        applying.apply(feed, read(schools), date(2021, 6, 25), rules=CALENDAR)
    assert str(stopped.value) == (
        "the history's last day column is 2021-06-10, 15 days before 2021-06-25: this update would add 14 "
        "zero-filled day column(s), 2021-06-11 to 2021-06-24, as days without a case, and put every case reported "
        "since then on 2021-06-25. Nothing was written. If the district really reported nothing new in between, "
        "rerun the update with fill_gap=true (cps-covid run --fill-gap, or a custom run in the Prefect UI); "
        "otherwise apply the missing days' feeds first (one update per day, oldest first)"
    )
    confirmed = applying.apply(feed, read(schools), date(2021, 6, 25), rules=CALENDAR, fill_gap=True)
    assert len(HistoryLayout.of(confirmed.schools.columns).days) == 25 and confirmed.added_cases == 2


def test_the_calendar_setting_is_read_and_a_wrong_one_named() -> None:
    assert season_calendar.parse_calendar(" SY2223:2022-08-18, SY2122:2021-08-30 ") == [
        season_calendar.SeasonStart("SY2122", date(2021, 8, 30)),
        season_calendar.SeasonStart("SY2223", date(2022, 8, 18)),
    ]
    assert season_calendar.parse_calendar("") == []
    with pytest.raises(InputError, match="setting seasons: 'SY2223 2022-08-18' is not NAME:YYYY-MM-DD"):
        season_calendar.parse_calendar("SY2223 2022-08-18")
    with pytest.raises(InputError, match="setting seasons '20-21'"):
        season_calendar.parse_calendar("20-21:2020-08-30")


def test_the_front_ends_layout_holds_across_season_changes(make_schools, make_totals) -> None:
    schools = make_schools(["20220612", "20220613"], {"609772": [40, 30]})
    result = applying.apply(
        feed_of_totals(make_totals, **{"609772": 2}), read(schools), date(2022, 6, 14), rules=CALENDAR
    )
    columns = result.schools.columns.tolist()
    assert columns[7:] == [GTOTAL, "preSY2122", "SY2122", "20220612", "20220613", "20220614"]  # carry-overs in order
    assert io.BytesIO(history.transposed_csv_bytes(result.schools)).read().count(b"\n") == len(columns)
