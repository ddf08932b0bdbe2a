"""Merge task: the pure merge, then the outputs validated and rendered."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid.publishing.published import Published
from cps_covid.rules import applying, inputs, merge, outputs, season_calendar
from cps_covid.rules.ledger import Entry
from cps_covid.systems.storage import Storage
from tasks.validate import guarded_validation


@task(name="Merge the feed into the history", cache_policy=NO_CACHE)
def merge_feed(
    history: inputs.History,
    feed: inputs.Feed,
    as_of: date,
    profiles: pd.DataFrame,
    ignore_ids: frozenset[str],
    new_season: str | None = None,
    rules: season_calendar.SeasonRules | None = None,
    fill_gap: bool = False,
) -> merge.MergeResult:
    result = applying.apply(
        feed,
        history,
        as_of,
        profiles=profiles,
        ignore_ids=ignore_ids,
        new_season=new_season,
        rules=rules,
        fill_gap=fill_gap,
    )
    logger = get_run_logger()
    logger.info("%d new case(s) at %d school(s) for %s", result.added_cases, result.schools_affected, result.day)
    for event in result.events:
        logger.warning("%s", event)
    return result


@task(name="Validate and render the outputs", cache_policy=NO_CACHE)
def render_outputs(
    result: merge.MergeResult,
    as_of: date,
    updated_at: datetime,
    site_url: str,
    arrivals: dict[str, list[tuple[str, int]]] | None = None,
    with_page: bool = False,
    docs_to: Storage | None = None,
    dataset: outputs.Dataset | None = None,
) -> outputs.Publication:
    return guarded_validation(
        "output-validation",
        lambda: outputs.build_publication(
            result, as_of, updated_at, site_url, arrivals=arrivals, with_page=with_page, dataset=dataset
        ),
        docs_to,
    )


@task(name="Recompute an unfinished update", cache_policy=NO_CACHE)
def recompute_entry(
    entry: Entry,
    payload: bytes,
    published: Published,
    arrivals: dict[str, list[tuple[str, int]]],
    site_url: str,
    dataset: outputs.Dataset,
) -> dict[str, tuple[bytes, str]]:
    """The objects a crashed run planned, rebuilt from its archived payload (``outputs.resumed_objects``)."""
    if published.schools is None:
        raise FileNotFoundError(f"update {entry.id} cannot be resumed: the published history is missing")
    totals = published.totals.body if published.totals else None
    return outputs.resumed_objects(entry, payload, published.schools.body, totals, arrivals, site_url, dataset)
