"""Validation tasks: each runs the Great Expectations suites for one input and reports in the UI."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from cps_covid.errors import ConcurrentWriteError
from cps_covid.rules import inputs
from cps_covid.rules.validation import ValidationFailed, ValidationReport, data_docs_page
from cps_covid.settings import Settings
from cps_covid.systems import s3
from cps_covid.systems.district import Fetched

T = TypeVar("T")


def _report(reports: list[ValidationReport], key: str) -> None:
    create_markdown_artifact(
        key=key,
        markdown="\n\n".join(r.markdown() for r in reports),
        description="Great Expectations results",
    )


def data_docs_key(flow_run_id: str, suite: str) -> str:
    return f"runs/{flow_run_id}/validation/{suite}.html"


def keep_data_docs(reports: list[ValidationReport], key: str, settings: Settings) -> None:
    """Each validation's Data Docs page, stored in the bucket under the run, and linked from the run."""
    run_id, run_name = str(flow_run.id or "local"), flow_run.name or "local"
    bucket = s3.bucket_of(settings)
    rows = ["| Suite | Input | Result | Data Docs |", "|---|---|---|---|"]
    for report in reports:
        if report.result is None:
            continue
        page_key = data_docs_key(run_id, report.suite)
        with suppress(ConcurrentWriteError):  # a retried task: this run's page is already there
            page = data_docs_page(report, run_name)
            bucket.put_new(page_key, page, content_type="text/html; charset=utf-8", metadata={})
        verdict = "passed" if report.success else f"**failed** ({len(report.failures)})"
        if report.warnings:
            verdict += f", {len(report.warnings)} warning(s)"
        rows.append(
            f"| `{report.suite}` | `{report.source}` | {verdict} | [{page_key}]({s3.object_url(bucket, page_key)}) |"
        )
    create_markdown_artifact(
        key=f"{key}-data-docs", markdown="\n".join(rows), description="Great Expectations Data Docs of the validation"
    )


def _keep(reports: list[ValidationReport], key: str, settings: Settings | None) -> None:
    if settings is None:
        return
    try:
        keep_data_docs(reports, key, settings)
    except Exception as err:  # the pages help a person; never hide the validation's own outcome behind them
        get_run_logger().warning("The Data Docs pages of %s could not be stored: %s", key, err)


def guarded_validation(key: str, step: Callable[[], T], settings: Settings | None = None) -> T:
    """Run a validating step; on failure leave the report as an artifact, then fail.

    With ``settings`` (not in a dry run), the Data Docs page of every suite is kept with the run.
    """
    try:
        value = step()
    except ValidationFailed as failed:
        _report(failed.reports, key)
        _keep(failed.reports, key, settings)
        raise
    _keep(getattr(value, "reports", []), key, settings)
    return value


@task(name="Validate the feed", cache_policy=NO_CACHE)
def validate_feed(fetched: Fetched, settings: Settings | None = None) -> inputs.Feed:
    feed = guarded_validation("feed-validation", lambda: inputs.read_feed(fetched.body, fetched.url), settings)
    get_run_logger().info(
        "Feed (%s): %d schools, %d cases this season",
        feed.kind,
        len(feed.totals),
        int(feed.totals["season_total"].sum()),
    )
    return feed


@task(name="Validate the history", cache_policy=NO_CACHE)
def validate_history(
    schools_csv: bytes, totals_csv: bytes | None, names: tuple[str, str], settings: Settings | None = None
) -> inputs.History:
    history = guarded_validation(
        "history-validation", lambda: inputs.read_history(schools_csv, totals_csv, names), settings
    )
    logger = get_run_logger()
    for warning in history.warnings:
        logger.warning("History drift: %s", warning)
    if history.warnings:
        _report(history.reports, "history-validation")
    return history
