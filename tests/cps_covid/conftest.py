"""Fixtures for the pure core: the project's bundled sample and small tables built in code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from cps_covid.rules import history, inputs
from cps_covid.rules.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID, WINDOWS

ROOT = Path(__file__).resolve().parents[2]

# A few real schools of the bundled history: id -> (name, latitude, longitude).
SCHOOLS = {
    "609772": ("ADDAMS", 41.6987388, -87.53297604),
    "610212": ("ALBANY PARK", 41.97150444, -87.71060879),
    "609695": ("AGASSIZ", 41.9341263, -87.65622867),
    "610529": ("ALCOTT HIGH SCHOOL", 41.93579456, -87.68056201),
}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def history_dir() -> Path:
    """The real published data of 2021-09-22, bundled with the project."""
    return ROOT / "data" / "history-2021-09-22"


@pytest.fixture(scope="session")
def feed_dir() -> Path:
    """The bundled fresh feed for 2021-09-23 (both formats) and its school profile."""
    return ROOT / "data" / "feeds"


@pytest.fixture(scope="session")
def real_files(history_dir: Path) -> dict[str, bytes]:
    return {
        name: (history_dir / name).read_bytes()
        for name in ("allCpsCovidData.csv", "CPStotals.csv", "newFormatTest.csv")
    }


@pytest.fixture(scope="session")
def _real_schools(real_files: dict[str, bytes]) -> pd.DataFrame:
    return history.read_table(real_files["allCpsCovidData.csv"], "allCpsCovidData.csv")


@pytest.fixture
def real_schools(_real_schools: pd.DataFrame) -> pd.DataFrame:
    """``allCpsCovidData.csv`` as published (a fresh copy per test)."""
    return _real_schools.copy()


@pytest.fixture(scope="session")
def real_history(real_files: dict[str, bytes]) -> inputs.History:
    """The real history read and validated once (Great Expectations is slow to import)."""
    return inputs.read_history(
        real_files["allCpsCovidData.csv"], real_files["CPStotals.csv"], ("allCpsCovidData.csv", "CPStotals.csv")
    )


def build_schools(
    days: list[str],
    counts: dict[str, list[int]],
    *,
    carry_overs: dict[str, dict[str, int]] | None = None,
    trailing: dict[str, list[object]] | None = None,
) -> pd.DataFrame:
    """A per-school table laid out like the published one.

    ``counts`` maps a school id (one of ``SCHOOLS`` or any 6 digits) to its day
    counts; ``carry_overs`` maps a carry-over column to per-school values (default
    an all-zero ``preSY2122``); ``gTotal`` is the day columns' sum, windows are 0.
    """
    carry_overs = {"preSY2122": {}} if carry_overs is None else carry_overs
    ids = list(counts)
    info = [SCHOOLS.get(i, (f"SCHOOL {i}", 41.85, -87.65)) for i in ids]
    columns: dict[str, object] = {
        SCHOOL: [n for n, _, _ in info],
        LATITUDE: [lat for _, lat, _ in info],
        LONGITUDE: [lon for _, _, lon in info],
        SCHOOL_ID: ids,
        **{w: [0] * len(ids) for w in WINDOWS},
        GTOTAL: [sum(counts[i]) for i in ids],
    }
    for column, values in carry_overs.items():
        columns[column] = [values.get(i, 0) for i in ids]
    for at, day in enumerate(days):
        columns[day] = [counts[i][at] for i in ids]
    for column, values in (trailing or {}).items():
        columns[column] = values
    frame = pd.DataFrame(columns)
    integers = [c for c in frame.columns if c not in (SCHOOL, LATITUDE, LONGITUDE, SCHOOL_ID, *(trailing or {}))]
    return frame.astype({c: "int64" for c in integers} | {SCHOOL: "str", SCHOOL_ID: "str"})


def build_totals(**season_totals: int) -> pd.DataFrame:
    """Feed season totals, as ``inputs.read_feed`` returns them: ``build_totals(**{"609772": 3})``."""
    return pd.DataFrame({SCHOOL_ID: list(season_totals), "season_total": list(season_totals.values())}).astype(
        {SCHOOL_ID: "str", "season_total": "int64"}
    )


@pytest.fixture
def make_schools() -> Callable[..., pd.DataFrame]:
    return build_schools


@pytest.fixture
def make_totals() -> Callable[..., pd.DataFrame]:
    return build_totals
