"""Archive task: the previous day's page and its month's index (the day's raw feed is a publication step).

Every write is conditional (``IfNoneMatch`` for a new key, ``IfMatch`` for the
index), so a concurrent run can never overwrite an archive row; the task is
idempotent, so a rerun after any failure completes what is missing. A concurrent
run that wrote the very same bytes first is no conflict: two runs started together
both go on to the ledger's claim, which lets exactly one of them publish.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from cps_covid.publishing.resources import Resources
from cps_covid.rules import archive, render
from cps_covid.rules.publish_plan import HTML_TYPE, PAGE_KEY
from cps_covid.systems.storage import put_or_match


def archive_previous_day(
    schools: pd.DataFrame, as_of: date, site_url: str, tags: dict[str, str], resources: Resources
) -> list[str]:
    """On the first run of a new day: keep the last day's page as ``historical/<day>-cases.html`` and index it.

    Every other run has nothing to archive and makes no task run at all.
    """
    archived = archive.day_to_archive(schools, as_of)
    return [] if archived is None else archive_day(schools, archived, site_url, tags, resources)


@task(name="Archive the previous day", cache_policy=NO_CACHE)
def archive_day(
    schools: pd.DataFrame, archived: archive.ArchivedDay, site_url: str, tags: dict[str, str], resources: Resources
) -> list[str]:
    """Runs before the update overwrites ``newcases.html``.

    The stored page is kept when it is that day's page, else the page is rendered from the day's column.
    """
    logger = get_run_logger()
    bucket = resources.bucket
    tags = dict(tags) | {"as-of": archived.day.isoformat()}
    notes = []

    if bucket.etag(archived.key) is None:
        stored = bucket.get(PAGE_KEY)
        if stored is not None and archive.page_shows_day(stored.body, archived.day, site_url):
            page, origin = stored.body, f"copied from {PAGE_KEY}"
        else:
            cases = archive.day_cases(schools, archived.day)
            page, origin = render.newcases_page(cases, archived.day, site_url), "rendered from the history"
        written = put_or_match(bucket, archived.key, page, content_type=HTML_TYPE, tags=tags)
        if written is None:
            origin = "the same page, archived by a concurrent run"
        notes.append(f"archived {archived.key} ({origin})")

    index = bucket.get(archived.index_key)
    updated = archive.month_index_with(index.body if index else None, archived, site_url)
    if updated is not None:
        etag = index.etag if index else None
        written = put_or_match(
            bucket, archived.index_key, updated, content_type=archive.INDEX_TYPE, tags=tags, if_match=etag
        )
        if written is not None and index is not None:  # a new key was never cached; a replaced one is
            reference = f"archive-{archived.day.isoformat()}-{written.etag.strip(chr(34))}"
            resources.cdn.invalidate([f"/{archived.index_key}"], reference)
        notes.append(
            f"added {archived.day.isoformat()} to {archived.index_key} "
            f"({archived.total_cases} case(s) at {archived.schools} school(s))"
        )
    for note in notes:
        logger.info("%s", note)
    if notes:
        create_markdown_artifact(
            key="case-archive", markdown="\n".join(f"- {n}" for n in notes), description="Case archive"
        )
    return notes
