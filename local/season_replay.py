"""The real 2021-22 season played forward from the bundled history: each day's feed and the history before it.

The bundled history (2021-09-22) holds every day column of the season, so the
district's health-API feed of any day from 2021-08-30 on can be derived from it
(a record per school and day with cases so far), and so can the history as it
was published at the end of any earlier day. 2021-09-23 is the bundled real feed;
later days repeat it (no new case).

The district published at no fixed hour: each replayed day's feed changes at a
random moment of that day (``change_at``), until which it still shows the day
before, so the feed watch has a change to see and the day's first run has none.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from cps_covid.rules import merge
from cps_covid.rules.clock import ReplayClock
from cps_covid.rules.schema import GTOTAL, SCHOOL_ID, HistoryLayout, day_column

ROOT = Path(__file__).resolve().parents[1]
HISTORY_FILE = ROOT / "data/history-2021-09-22/allCpsCovidData.csv"
FEEDS_DIR = ROOT / "data/feeds"
LAST_FEED_FILE = FEEDS_DIR / "2021-09-23-health-api.json"
FIRST_DAY, LAST_HISTORY_DAY = date(2021, 8, 30), date(2021, 9, 22)
"""The season's first day (preSY2122 counts everything before it) and the bundled history's last day."""


def real_schools() -> pd.DataFrame:
    return pd.read_csv(HISTORY_FILE, dtype={SCHOOL_ID: "str", "School": "str"})


def season_columns(real: pd.DataFrame) -> list[str]:
    return [d for d in HistoryLayout.of(real.columns).days if d >= day_column(FIRST_DAY)]


def feed_of(real: pd.DataFrame, day: date) -> bytes:
    """The health API on ``day``: a record per school and day with cases so far this season."""
    if day > LAST_HISTORY_DAY:
        return LAST_FEED_FILE.read_bytes()
    so_far = [d for d in season_columns(real) if d <= day_column(day)]
    return json.dumps(
        [
            {"SchoolID": int(sid), "CaseDate": f"{d[4:6]}/{d[6:]}/{d[:4]}", "TotalCaseCount": int(n)}
            for sid, counts in zip(real[SCHOOL_ID], real[so_far].to_numpy(), strict=True)
            for d, n in zip(so_far, counts, strict=True)
            if n
        ]
    ).encode()


def history_until(real: pd.DataFrame, day: date) -> pd.DataFrame:
    """The per-school table as published at the end of ``day`` (the season before 2021-08-30 closed)."""
    later = [d for d in season_columns(real) if d > day_column(day)]
    cut = real.drop(columns=later)
    cut[GTOTAL] = cut["preSY2122"] + cut[[d for d in season_columns(cut)]].sum(axis=1)
    return merge.recompute_windows(cut)


CHANGES_BETWEEN = (0.2, 0.4)
"""Where in its day a replayed day's feed changes: after the day's first (cron) run, and early enough that
the watch sees it and the run it triggers is scheduled within that day."""


def change_at(day: date) -> float:
    """The moment of ``day`` its feed changes, as a fraction of the day: random, the same on every replay."""
    return random.Random(day.toordinal()).uniform(*CHANGES_BETWEEN)


def day_shown(clock: ReplayClock, at: datetime, first_day: date) -> date:
    """The day whose feed the source shows at ``at``: the replayed day once its change came, else the day before."""
    day = clock.day(at)
    if clock.time_of_day(at) >= change_at(day):
        return day
    return max(day - timedelta(days=1), first_day - timedelta(days=1))
