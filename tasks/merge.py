"""Merge task: the pure merge, then the outputs validated and rendered."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid import merge, pipeline
from cps_covid.errors import ConcurrentWriteError
from cps_covid.ledger import Entry
from cps_covid.publish_plan import md5
from cps_covid.settings import Settings
from tasks.validate import guarded_validation


@task(name="Merge the feed into the history", cache_policy=NO_CACHE)
def merge_feed(
    history: pipeline.History,
    feed: pipeline.Feed,
    as_of: date,
    profiles: pd.DataFrame,
    ignore_ids: frozenset[str],
    new_season: str | None = None,
    rules: pipeline.SeasonRules | None = None,
    fill_gap: bool = False,
) -> merge.MergeResult:
    result = pipeline.apply(
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
    settings: Settings | None = None,
) -> pipeline.Publication:
    return guarded_validation(
        "output-validation",
        lambda: pipeline.build_publication(result, as_of, updated_at, site_url, arrivals=arrivals, with_page=with_page),
        settings,
    )


@task(name="Recompute an unfinished update", cache_policy=NO_CACHE)
def recompute_entry(
    entry: Entry, payload: bytes, published: dict, arrivals: dict[str, list[tuple[str, int]]], site_url: str
) -> dict[str, tuple[bytes, str]]:
    """The objects a crashed run planned, rebuilt from its archived payload and what is published now.

    Everything derives from the per-school table, so whether or not that table was
    already written, the same payload gives the same bytes; any difference means
    someone else changed the data and stops the resume.
    """
    schools_obj, totals_obj = published[pipeline.SCHOOLS_KEY], published[pipeline.TOTALS_KEY]
    result = pipeline.replay(entry, payload, schools_obj.body, totals_obj.body if totals_obj else None, resumed=True)
    as_of = date.fromisoformat(entry.as_of)
    claimed = datetime.fromisoformat(entry.claimed_at)
    publication = pipeline.build_publication(
        result, as_of, claimed, site_url, arrivals=arrivals, with_page=pipeline.PAGE_KEY in entry.objects
    )
    objects = {k: v for k, v in publication.objects.items() if k in entry.objects}
    differing = [k for k, (body, _) in objects.items() if md5(body) != entry.objects[k]]
    if differing or set(objects) != set(entry.objects):
        raise ConcurrentWriteError(
            f"update {entry.id} cannot be resumed: {', '.join(differing) or 'its objects'} would differ from what it "
            "planned, so the published data changed since it was claimed; fix by hand (cps-covid rollback)"
        )
    return objects
