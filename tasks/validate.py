"""Validation tasks: each runs the Great Expectations suites for one input and reports in the UI."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from cps_covid import pipeline
from cps_covid.io.district import Fetched
from cps_covid.validation import ValidationFailed, ValidationReport

T = TypeVar("T")


def _report(reports: list[ValidationReport], key: str) -> None:
    create_markdown_artifact(
        key=key,
        markdown="\n\n".join(r.markdown() for r in reports),
        description="Great Expectations results",
    )


def guarded_validation(key: str, step: Callable[[], T]) -> T:
    """Run a validating step; on failure leave the report as an artifact, then fail."""
    try:
        return step()
    except ValidationFailed as failed:
        _report(failed.reports, key)
        raise


@task(name="Validate the feed", cache_policy=NO_CACHE)
def validate_feed(fetched: Fetched) -> pipeline.Feed:
    feed = guarded_validation("feed-validation", lambda: pipeline.read_feed(fetched.body, fetched.url))
    get_run_logger().info(
        "Feed (%s): %d schools, %d cases this season",
        feed.kind,
        len(feed.totals),
        int(feed.totals["season_total"].sum()),
    )
    return feed


@task(name="Validate the history", cache_policy=NO_CACHE)
def validate_history(schools_csv: bytes, totals_csv: bytes | None, names: tuple[str, str]) -> pipeline.History:
    history = guarded_validation("history-validation", lambda: pipeline.read_history(schools_csv, totals_csv, names))
    logger = get_run_logger()
    for warning in history.warnings:
        logger.warning("History drift: %s", warning)
    if history.warnings:
        _report(history.reports, "history-validation")
    return history
