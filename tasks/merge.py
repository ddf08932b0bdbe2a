"""Merge task: the pure merge, then the outputs validated and rendered."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid import merge, pipeline
from tasks.validate import guarded_validation


@task(name="Merge the feed into the history", cache_policy=NO_CACHE)
def merge_feed(
    history: pipeline.History, feed: pipeline.Feed, as_of: date, profiles: pd.DataFrame, ignore_ids: frozenset[str]
) -> merge.MergeResult:
    result = merge.apply_feed(history.schools, feed.totals, as_of, profiles=profiles, ignore_ids=ignore_ids)
    logger = get_run_logger()
    logger.info("%d new case(s) at %d school(s) for %s", result.new_cases, len(result.changes), result.day)
    for event in result.events:
        logger.warning("%s", event)
    return result


@task(name="Validate and render the outputs", cache_policy=NO_CACHE)
def render_outputs(result: merge.MergeResult, as_of: date, updated_at: datetime, site_url: str) -> pipeline.Publication:
    return guarded_validation(
        "output-validation", lambda: pipeline.build_publication(result, as_of, updated_at, site_url)
    )
