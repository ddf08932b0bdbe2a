"""Social posts an earlier run could not make, retried at the start of a run (``publishing.social_posts``)."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from cps_covid.publishing.resources import Resources


def report_posts(notes: list[str]) -> None:
    """The ``[social]`` notes in the run's log and its ``social-posts`` artifact."""
    notes = [n for n in notes if n.startswith("[social]")]
    logger = get_run_logger()
    for note in notes:
        (logger.warning if "failed" in note or "retried" in note else logger.info)("%s", note)
    if notes:
        create_markdown_artifact(
            key="social-posts", markdown="\n".join(f"- {n}" for n in notes), description="Social summary posts"
        )


def retry_social_posts(as_of: date, resources: Resources) -> list[str]:
    """A post an earlier run could not make; with every channel off (the default) not even a task run."""
    return post_pending(as_of, resources) if resources.social.enabled else []


@task(name="Retry social posts", cache_policy=NO_CACHE)
def post_pending(as_of: date, resources: Resources) -> list[str]:
    notes = resources.social.post(None, as_of)
    report_posts(notes)
    return notes
