"""Flag unusual jumps (robust z-scores) without ever dropping them (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cps_covid.rules.merge import Event, Tag
from cps_covid.rules.schema import SCHOOL, SCHOOL_ID, HistoryLayout

Z_LIMIT = 5.0
TRAILING_WEEKS = 8
MIN_SCHOOL_CASES = 5
MIN_DISTRICT_CASES = 50


def _robust_z(value: np.ndarray, history: np.ndarray) -> np.ndarray:
    """(value - median) / (1.4826 * MAD) per row, with the MAD floored at 1 case."""
    median = np.median(history, axis=1)
    mad = np.median(np.abs(history - median[:, None]), axis=1)
    return (value - median) / (1.4826 * np.maximum(mad, 1.0))


def flag_outliers(schools: pd.DataFrame, changes: pd.DataFrame, day: str) -> list[Event]:
    """Schools whose new cases stand far above their trailing weekly counts, and a district-level jump."""
    layout = HistoryLayout.of(schools.columns)
    before = [d for d in layout.days if d < day][-7 * TRAILING_WEEKS :]
    if len(before) < 7 * TRAILING_WEEKS or changes.empty:
        return []
    weeks = schools[before].to_numpy().reshape(len(schools), TRAILING_WEEKS, 7).sum(axis=2)
    moved = schools[SCHOOL_ID].isin(changes[SCHOOL_ID]).to_numpy()
    today = schools[day].to_numpy()
    z = _robust_z(today[moved], weeks[moved])
    events = [
        Event(
            Tag.OUTLIER,
            sid,
            name,
            f"{n} cases on {day}, robust z-score {score:.1f} against its last "
            f"{TRAILING_WEEKS} weeks: flagged, not dropped",
            int(n),
            day,
        )
        for sid, name, n, score in zip(schools[SCHOOL_ID][moved], schools[SCHOOL][moved], today[moved], z, strict=True)
        if n >= MIN_SCHOOL_CASES and score > Z_LIMIT
    ]
    district_days = schools[before].sum(axis=0).to_numpy()[None, :]
    district_today = int(today.sum())
    score = float(_robust_z(np.array([district_today]), district_days)[0])
    if district_today >= MIN_DISTRICT_CASES and score > Z_LIMIT:
        events.append(
            Event(
                Tag.DISTRICT_JUMP,
                "*",
                "DISTRICT",
                f"{district_today} cases on {day}, robust z-score "
                f"{score:.1f} against the last {7 * TRAILING_WEEKS} days: flagged, not dropped",
                district_today,
                day,
            )
        )
    return events
