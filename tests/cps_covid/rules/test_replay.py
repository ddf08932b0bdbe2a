"""From the bundled history, derive daily feeds and show the merge reproduces the published per-school numbers.

The history is cut back to the eve of the 2021-22 season (no day column from
2021-08-29 on, ``gTotal`` = ``preSY2122``: season total 0). Each calendar day
from 2021-08-29 to 2021-09-22 then gets the feed the district would have
published that day (every case of the season so far, in either source format),
and is merged in order. The result must be the published file.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from cps_covid.rules import history, merge, open_data
from cps_covid.rules.errata import errata_records
from cps_covid.rules.feed import parse_feed
from cps_covid.rules.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID, WINDOWS, HistoryLayout, day_column
from cps_covid.rules.season_calendar import DISTRICT_SEASONS, parse_calendar

SEASON_START = date(2021, 8, 29)
LAST_DAY = date(2021, 9, 22)
BLAIR = "610087"


def season_days(real: pd.DataFrame) -> list[str]:
    return [d for d in HistoryLayout.of(real.columns).days if d >= day_column(SEASON_START)]


def eve_of_season(real: pd.DataFrame) -> pd.DataFrame:
    cut = real.drop(columns=season_days(real))
    cut[GTOTAL] = cut["preSY2122"]  # season total 0 everywhere; BLAIR's day columns still sum to 2
    return merge.recompute_windows(cut)


def stamp(day: str) -> str:
    return f"{day[4:6]}/{day[6:]}/{day[:4]}"


def case_list_csv(real: pd.DataFrame, days: list[str]) -> bytes:
    """The Google Sheet case list: one row per case reported so far this season."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["Result Date", "CPS School ID", "School", "Role"])
    for sid, name, counts in zip(real[SCHOOL_ID], real[SCHOOL], real[days].to_numpy(), strict=True):
        for day, count in zip(days, counts, strict=True):
            writer.writerows([[stamp(day), sid, name, "Student"]] * int(count))
    return out.getvalue().encode()


def health_api_json(real: pd.DataFrame, days: list[str]) -> bytes:
    """The CPS health API: one record per school and day with cases."""
    records = [
        {"SchoolID": int(sid), "SchoolShortName": name, "CaseDate": stamp(day), "TotalCaseCount": int(count)}
        for sid, name, counts in zip(real[SCHOOL_ID], real[SCHOOL], real[days].to_numpy(), strict=True)
        for day, count in zip(days, counts, strict=True)
        if count
    ]
    return json.dumps(records).encode()


FORMATS = {"case-list-csv": case_list_csv, "health-api-json": health_api_json}


def feed_totals(payload: bytes, name: str, kind: str) -> pd.DataFrame:
    """Parse the payload by content and add up season totals, as ``inputs.read_feed`` does."""
    parsed = parse_feed(payload, name)
    assert parsed.kind == kind
    return merge.season_totals_from_rows(parsed.rows.assign(cases=parsed.rows["cases_number"].astype("int64")))


def replay(real: pd.DataFrame, start: pd.DataFrame, kind: str, profiles: pd.DataFrame | None = None):
    schools, events, per_day = start, [], {}
    days = season_days(real)
    day = SEASON_START
    while day <= LAST_DAY:
        so_far = [d for d in days if d <= day_column(day)]
        payload = FORMATS[kind](real, so_far)
        result = merge.apply_feed(schools, feed_totals(payload, f"{day}.feed", kind), day, profiles=profiles)
        schools, events = result.schools, [*events, *[(day, e) for e in result.events]]
        per_day[result.day] = dict(zip(result.changes[SCHOOL_ID], result.changes["new_cases"], strict=True))
        day += timedelta(days=1)
    return schools, events, per_day


@pytest.fixture(scope="module")
def real(_real_schools) -> pd.DataFrame:
    return _real_schools.copy()


def test_the_cut_history_is_the_eve_of_the_season(real):
    start = eve_of_season(real)
    layout = HistoryLayout.of(start.columns)
    assert len(season_days(real)) == 25  # one column per calendar day, 2021-08-29 .. 2021-09-22
    assert layout.days[-1] == "20210828"
    assert (start[GTOTAL] == start["preSY2122"]).all()
    assert real[GTOTAL].sum() - start[GTOTAL].sum() == real[season_days(real)].to_numpy().sum() == 487
    blair = start[start[SCHOOL_ID] == BLAIR].iloc[0]
    assert (blair[GTOTAL], blair[layout.days].sum()) == (1, 2)


@pytest.mark.parametrize("kind", list(FORMATS))
def test_daily_feeds_reproduce_the_published_schools(real, kind):
    schools, events, per_day = replay(real, eve_of_season(real), kind)

    # every column and every school as published, except BLAIR's repaired drift
    assert list(schools.columns) == list(real.columns)
    assert schools[SCHOOL_ID].tolist() == real[SCHOOL_ID].tolist()
    days = HistoryLayout.of(real.columns).days
    pd.testing.assert_frame_equal(schools[days], real[days])
    pd.testing.assert_frame_equal(schools[[*WINDOWS]], real[[*WINDOWS]])
    others = schools[SCHOOL_ID] != BLAIR
    pd.testing.assert_series_equal(schools.loc[others, GTOTAL], real.loc[others, GTOTAL])
    pd.testing.assert_frame_equal(
        schools[[SCHOOL, LATITUDE, LONGITUDE, "preSY2122"]][others],
        real[others][[SCHOOL, LATITUDE, LONGITUDE, "preSY2122"]],
    )

    # BLAIR: published gTotal 1 under day columns summing to 2; the merge repaired it onto preSY2122
    ours, published = schools[~others].iloc[0], real[~others].iloc[0]
    assert (published[GTOTAL], published["preSY2122"]) == (1, 1)
    assert (ours[GTOTAL], ours["preSY2122"]) == (2, 2)
    assert ours[GTOTAL] - published[GTOTAL] == ours["preSY2122"] - published["preSY2122"] == 1
    assert ours[GTOTAL] == ours[days].sum()
    expected = real.copy()
    expected.loc[~others, [GTOTAL, "preSY2122"]] = 2
    pd.testing.assert_frame_equal(schools, expected)

    # the only event: the drift repair, on the first day; no corrections along the way
    assert [(day, e.tag, e.school_id) for day, e in events] == [(SEASON_START, "drift-repair", BLAIR)]

    # each day's changes are exactly that day's published column
    for day, changes in per_day.items():
        column = real.set_index(SCHOOL_ID)[day]
        assert changes == {sid: n for sid, n in column.items() if n}, day
    assert sum(n for changes in per_day.values() for n in changes.values()) == 487
    pd.testing.assert_frame_equal(merge.district_totals(schools), merge.district_totals(real))


def test_schools_first_seen_this_season_come_from_their_profiles(real):
    new = (real["preSY2122"] == 0) & (real[GTOTAL] > 0)
    assert new.sum() == 11
    start = eve_of_season(real)[~new].reset_index(drop=True)
    profiles = real.loc[new, [SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE]].reset_index(drop=True)

    schools, events, _ = replay(real, start, "health-api-json", profiles=profiles)

    added = [e for _, e in events if e.tag == "school-added"]
    assert sorted(e.school_id for e in added) == sorted(real.loc[new, SCHOOL_ID])
    assert not [e for _, e in events if e.tag == "school-added-without-profile"]
    kept = schools[SCHOOL_ID].isin(start[SCHOOL_ID])
    assert schools.loc[kept, SCHOOL_ID].tolist() == start[SCHOOL_ID].tolist()  # the others keep their order
    assert schools[SCHOOL_ID].tolist() == real[SCHOOL_ID].tolist()  # each new school at its place, as served
    in_real_order = schools.set_index(SCHOOL_ID).loc[real[SCHOOL_ID]].reset_index()[list(real.columns)]
    expected = real.copy()
    expected.loc[expected[SCHOOL_ID] == BLAIR, [GTOTAL, "preSY2122"]] = 2
    pd.testing.assert_frame_equal(in_real_order, expected)
    np.testing.assert_array_equal(
        in_real_order.loc[new.to_numpy(), LATITUDE].to_numpy(), real.loc[new, LATITUDE].to_numpy()
    )


def test_the_replays_errata_are_blairs_drift_repair_and_nothing_else(real):
    """The open dataset's errata come from the merge's typed events: what changed a value, and why."""
    _, events, _ = replay(real, eve_of_season(real), "case-list-csv")

    records = errata_records(e for _, e in events)

    assert records == [
        {
            "school_id": BLAIR,
            "school": "BLAIR",
            "kind": "drift-repair",
            "field": GTOTAL,
            "old": 1,
            "new": 2,
            "reason": "day columns sum to 2 but gTotal was 1; gTotal set to 2 and preSY2122 from 1 to 2, "
            "season total unchanged",
        }
    ]


def test_the_replayed_table_rebuilds_from_the_open_datasets_tidy_tables_byte_for_byte(real):
    schools, _, _ = replay(real, eve_of_season(real), "health-api-json")
    calendar = parse_calendar(DISTRICT_SEASONS)

    rebuilt = open_data.wide_table(open_data.tidy_tables(schools, calendar))

    assert history.csv_bytes(rebuilt) == history.csv_bytes(schools)
