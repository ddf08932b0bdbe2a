"""A feed applied to the history within the season's guards, and a ledger entry replayed the same way (pure).

A gap longer than the settings allow or a reset of the district's totals stops the run unless the operator
confirmed it, or the season calendar closes the season; the merge itself is ``merge.apply_feed``.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from cps_covid.errors import NewSeasonError
from cps_covid.rules import merge, outliers, season, season_calendar
from cps_covid.rules.inputs import Feed, History, read_feed, read_history
from cps_covid.rules.ledger import Entry
from cps_covid.rules.publish_plan import SCHOOLS_KEY, TOTALS_KEY
from cps_covid.rules.schema import LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID
from cps_covid.rules.season_calendar import Rerun, SeasonRules


def apply(
    feed: Feed,
    history: History,
    as_of: date,
    *,
    profiles: pd.DataFrame | None = None,
    ignore_ids: frozenset[str] = frozenset(),
    new_season: str | None = None,
    rules: SeasonRules | None = None,
    fill_gap: bool = False,
    rerun: Rerun | None = None,
    resumed: bool = False,
) -> merge.MergeResult:
    """The merge with its guards: a gap or a reset stops the run unless confirmed, or the calendar closes the season.

    ``rules``: the season calendar and the gap limit (none: no calendar, no gap
    limit). ``fill_gap``: the operator confirmed a gap. ``rerun`` says, in a stop
    message, how the person who ran this reruns it. ``resumed``: an unfinished
    update is being finished, and the history it reads may already hold the
    column its season close added.
    """
    rules = rules or SeasonRules(max_gap_days=None)
    rerun = rerun or Rerun()
    schools = history.schools
    if not (fill_gap or resumed):
        season.check_gap(schools, as_of, rules, rerun)
    closing = new_season if new_season and not (resumed and new_season in schools.columns) else None
    by_calendar = None
    if not new_season and season.is_reset(schools, feed.totals):
        found = season_calendar.calendar_close(rules.calendar, as_of, rules.window_days)
        message = season.reset_message(schools, feed.totals, rerun.option("--new-season NAME", "new_season=NAME"))
        if found is None:
            raise NewSeasonError(message)
        if found[0] in schools.columns:
            raise NewSeasonError(
                f"{message}. The season calendar would close it into {found[0]}, which the history already has"
            )
        closing, by_calendar = found
    if closing:
        schools = season.close_season(schools, closing)  # refuses a name the history already has
    result = merge.apply_feed(schools, feed.totals, as_of, profiles=profiles, ignore_ids=ignore_ids)
    if closing:
        detail = f"season closed into carry-over column {closing}"
        if by_calendar:
            detail += (
                f" by the season calendar: {by_calendar.name} starts {by_calendar.first_day} and the district's "
                f"totals reset on {as_of}"
            )
        result.events.insert(0, merge.Event(merge.Tag.NEW_SEASON, "*", "DISTRICT", detail))
        result.season_closed = closing
        result.closed_by_calendar = by_calendar is not None
    result.events[:0] = history.events
    result.events += outliers.flag_outliers(result.schools, result.changes, result.day)
    return result


def replay(
    entry: Entry, payload: bytes, schools_csv: bytes, totals_csv: bytes | None, *, resumed: bool = False
) -> merge.MergeResult:
    """What a ledger entry's archived payload gives on a published table, with the entry's own choices
    (profiles, ignored ids, season closed): a resumed update recomputes its objects, a rebuild its table."""
    profiles = pd.DataFrame(entry.profiles, columns=[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE])
    return apply(
        read_feed(payload, entry.raw_key),
        read_history(schools_csv, totals_csv, (SCHOOLS_KEY, TOTALS_KEY)),
        date.fromisoformat(entry.as_of),
        profiles=profiles,
        ignore_ids=frozenset(entry.ignore_ids),
        new_season=entry.new_season,
        resumed=resumed,
    )
