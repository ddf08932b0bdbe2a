"""Synthetic histories laid out like ``allCpsCovidData.csv``, any number of schools and days.

Written straight from numpy (day cells are single digits, mostly zero like the
real file), so a 100,000 x 3,650 history takes seconds to make, not minutes.
Each history comes with a feed (season totals with new cases, a few
corrections, new schools and an ignored id) and the school profiles of the new
schools, so a merge on it does every kind of work the real one does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from cps_covid.rules.schema import LEADING_COLUMNS, day_column

FIRST_DAY = date(2015, 1, 1)
SEASON_DAYS = 120
"""Day columns of the current season; everything before is in the ``preSY2122`` carry-over."""
NEW_SCHOOLS = 3
"""Ids in the feed the history has never seen; all but the last have a school profile."""
IGNORED_ID = "610377"
FIRST_ID = 200_000
CHUNK_ROWS = 2_000
FORMAT = 2
"""Bumped when what is written changes, so cached histories are made again."""
# P(cell >= 1), P(cell >= 2), P(cell >= 3): mean ~0.025 cases per school-day, like the 2021-22 season
LEVELS = (0.02, 0.004, 0.001)


@dataclass(frozen=True)
class Synthetic:
    history: Path
    feed: Path
    profiles: Path
    schools: int
    days: int
    as_of: date
    ignore_ids: frozenset[str] = frozenset({IGNORED_ID})

    @property
    def cells(self) -> int:
        return self.schools * self.days


def as_of_for(days: int) -> date:
    """The day after the last day column: one new column per merge, as in daily operation."""
    return FIRST_DAY + timedelta(days=days)


def _at(folder: Path, schools: int, days: int) -> Synthetic:
    return Synthetic(
        folder / "history.csv", folder / "feed.csv", folder / "profiles.json", schools, days, as_of_for(days)
    )


def load(folder: Path) -> Synthetic:
    """A history ``generate`` wrote earlier."""
    meta = json.loads((folder / "meta.json").read_text())
    return _at(folder, meta["schools"], meta["days"])


def generate(folder: Path, schools: int, days: int, seed: int = 20210923) -> Synthetic:
    """Write ``history.csv``, ``feed.csv`` and ``profiles.json`` under ``folder`` (reused if already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = _at(folder, schools, days)
    meta = folder / "meta.json"
    if meta.exists() and json.loads(meta.read_text()) == {
        "schools": schools,
        "days": days,
        "seed": seed,
        "format": FORMAT,
    }:
        return done
    rng = np.random.default_rng(seed)
    day_names = [day_column(FIRST_DAY + timedelta(days=i)) for i in range(days)]
    header = [*LEADING_COLUMNS, "preSY2122", *day_names]
    season_from = max(0, days - SEASON_DAYS)
    season = np.empty(schools, dtype=np.int64)
    partial = done.history.with_suffix(".part")
    with partial.open("wb") as out:
        out.write((",".join(header) + "\n").encode())
        for start in range(0, schools, CHUNK_ROWS):
            rows = min(CHUNK_ROWS, schools - start)
            draw = rng.random((rows, days), dtype=np.float32)
            cells = sum((draw < p).astype(np.uint8) for p in LEVELS)
            del draw
            text = np.empty((rows, 2 * days), dtype=np.uint8)
            text[:, 0::2] = cells + ord("0")
            text[:, 1::2] = ord(",")
            text[:, -1] = ord("\n")
            totals = cells.sum(axis=1, dtype=np.int64)
            carried = cells[:, :season_from].sum(axis=1, dtype=np.int64)
            windows = [cells[:, -n:].sum(axis=1, dtype=np.int64) for n in (7, 14, 21)]
            season[start : start + rows] = totals - carried
            lat = np.round(41.65 + 0.37 * rng.random(rows), 8)
            lon = np.round(-87.84 + 0.31 * rng.random(rows), 8)
            for i in range(rows):
                number = start + i
                lead = (
                    f"SCHOOL {number},{lat[i]:.10g},{lon[i]:.10g},{FIRST_ID + number},"
                    f"{windows[0][i]},{windows[1][i]},{windows[2][i]},{totals[i]},{carried[i]},"
                )
                out.write(lead.encode())
                out.write(text[i].tobytes())
    partial.rename(done.history)
    _write_feed(done, season, rng)
    meta.write_text(json.dumps({"schools": schools, "days": days, "seed": seed, "format": FORMAT}))
    return done


def _write_feed(done: Synthetic, season: np.ndarray, rng: np.random.Generator) -> None:
    """Season totals: ~5% of schools with 1-3 new cases, a few corrections, new schools, an ignored id."""
    reported = season.copy()
    moved = rng.random(len(season)) < 0.05
    reported[moved] += rng.integers(1, 4, size=int(moved.sum()))
    down = np.flatnonzero((season > 0) & ~moved)[:3]
    reported[down] -= 1
    ids = [str(FIRST_ID + i) for i in range(len(season))]
    new_ids = [str(900_000 + i) for i in range(NEW_SCHOOLS)]
    lines = ["CPS_School_ID,season_total,School"]
    lines += [f"{sid},{n}," for sid, n in zip(ids, reported.tolist(), strict=True)]
    lines += [f"{sid},{i + 1},NEW SCHOOL {i}" for i, sid in enumerate(new_ids)]
    lines.append(f"{IGNORED_ID},5,NOT A SCHOOL")
    done.feed.write_text("\n".join(lines) + "\n")
    profiles = [
        {"CPS_School_ID": sid, "Short_Name": f"NEW - SCHOOL {i}", "School_Latitude": 41.9, "School_Longitude": -87.7}
        for i, sid in enumerate(new_ids[:-1])
    ]
    done.profiles.write_text(json.dumps(profiles))
