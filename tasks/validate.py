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
from cps_covid.publishing.published import Published
from cps_covid.rules import inputs
from cps_covid.rules.publish_plan import SCHOOLS_KEY, TOTALS_KEY
from cps_covid.rules.validation import ValidationFailed, ValidationReport, data_docs_page
from cps_covid.systems import s3
from cps_covid.systems.district import Fetched
from cps_covid.systems.storage import Storage

T = TypeVar("T")


def _report(reports: list[ValidationReport], key: str) -> None:
    create_markdown_artifact(
        key=key,
        markdown="\n\n".join(r.markdown() for r in reports),
        description="Great Expectations results",
    )


def data_docs_key(flow_run_id: str, suite: str) -> str:
    return f"runs/{flow_run_id}/validation/{suite}.html"


def keep_data_docs(reports: list[ValidationReport], key: str, bucket: Storage) -> None:
    """Each validation's Data Docs page, stored in the bucket under the run, and linked from the run."""
    run_id, run_name = str(flow_run.id or "local"), flow_run.name or "local"
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
        rows.append(f"| `{report.suite}` | `{report.source}` | {verdict} | [{page_key}]({_url(bucket, page_key)}) |")
    create_markdown_artifact(
        key=f"{key}-data-docs", markdown="\n".join(rows), description="Great Expectations Data Docs of the validation"
    )


def _url(bucket: Storage, key: str) -> str:
    return s3.object_url(bucket, key) if isinstance(bucket, s3.Bucket) else key


def _keep(reports: list[ValidationReport], key: str, docs_to: Storage | None) -> None:
    if docs_to is None:
        return
    try:
        keep_data_docs(reports, key, docs_to)
    except Exception as err:  # the pages help a person; never hide the validation's own outcome behind them
        get_run_logger().warning("The Data Docs pages of %s could not be stored: %s", key, err)


def guarded_validation(key: str, step: Callable[[], T], docs_to: Storage | None = None) -> T:
    """Run a validating step; on failure leave the report as an artifact, then fail.

    ``docs_to``: the bucket where the Data Docs page of every suite is kept with the run (``None``, a dry
    run: nowhere).
    """
    try:
        value = step()
    except ValidationFailed as failed:
        _report(failed.reports, key)
        _keep(failed.reports, key, docs_to)
        raise
    _keep(getattr(value, "reports", []), key, docs_to)
    return value


@task(name="Validate the feed", cache_policy=NO_CACHE)
def validate_feed(fetched: Fetched, docs_to: Storage | None = None) -> inputs.Feed:
    feed = guarded_validation("feed-validation", lambda: inputs.read_feed(fetched.body, fetched.url), docs_to)
    get_run_logger().info(
        "Feed (%s): %d schools, %d cases this season",
        feed.kind,
        len(feed.totals),
        int(feed.totals["season_total"].sum()),
    )
    return feed


@task(name="Validate the history", cache_policy=NO_CACHE)
def validate_history(published: Published, bucket_name: str, docs_to: Storage | None = None) -> inputs.History:
    """The published tables through their suites; drift is a warning (``inputs.read_history``)."""
    schools_name, totals_name = (f"s3://{bucket_name}/{key}" for key in (SCHOOLS_KEY, TOTALS_KEY))
    if published.schools is None:
        raise FileNotFoundError(f"{schools_name} does not exist: seed the history first")
    schools_csv, totals_csv = published.schools.body, published.totals.body if published.totals else None
    history = guarded_validation(
        "history-validation",
        lambda: inputs.read_history(schools_csv, totals_csv, (schools_name, totals_name)),
        docs_to,
    )
    logger = get_run_logger()
    for warning in history.warnings:
        logger.warning("History drift: %s", warning)
    if history.warnings:
        _report(history.reports, "history-validation")
    return history
