"""Unusual jumps are flagged, never dropped (pure)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from cps_covid.rules.merge import Tag
from cps_covid.rules.outliers import flag_outliers
from cps_covid.rules.schema import SCHOOL_ID, day_column

DAYS = [day_column(date(2021, 9, 1) + timedelta(days=n)) for n in range(57)]  # 8 weeks, then the day
TODAY = DAYS[-1]


def changes(**new_cases: int) -> pd.DataFrame:
    return pd.DataFrame({SCHOOL_ID: list(new_cases), "new_cases": list(new_cases.values())})


def test_a_school_far_above_its_trailing_weeks_is_flagged(make_schools) -> None:
    schools = make_schools(DAYS, {"609772": [0, 1] * 28 + [12], "610212": [1] * 56 + [2]})
    (event,) = flag_outliers(schools, changes(**{"609772": 12, "610212": 1}), TODAY)
    assert (event.tag, event.school_id) == (Tag.OUTLIER, "609772")
    assert event.detail.startswith(f"12 cases on {TODAY}, robust z-score") and "flagged, not dropped" in event.detail


def test_few_cases_or_a_short_history_flag_nothing(make_schools) -> None:
    quiet = make_schools(DAYS, {"609772": [0] * 56 + [4]})  # below the 5 cases a flag needs
    assert flag_outliers(quiet, changes(**{"609772": 4}), TODAY) == []
    short = make_schools(DAYS[-8:], {"609772": [0] * 7 + [40]})
    assert flag_outliers(short, changes(**{"609772": 40}), TODAY) == []


def test_a_district_wide_jump_is_flagged_once(make_schools) -> None:
    ids = [f"6{n:05d}" for n in range(60)]
    schools = make_schools(DAYS, {sid: [0] * 56 + [1] for sid in ids} | {"609772": [1] * 56 + [1]})
    events = flag_outliers(schools, changes(**dict.fromkeys(ids, 1)), TODAY)
    assert [(e.tag, e.school_id) for e in events] == [(Tag.DISTRICT_JUMP, "*")]
    assert events[0].detail.startswith(f"61 cases on {TODAY}")
