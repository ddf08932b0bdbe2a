"""Fetch tasks: the district's case feed and profiles of schools seen for the first time.

The feed watch imports this module too, and must not import pandas: the profiles' table is made by a lazy import.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from cps_covid.settings import Settings
from cps_covid.systems import district
from tasks.retrying import transient_only

if TYPE_CHECKING:
    import pandas as pd


# No jitter on the fetches (one client, no herd to spread): the delay Prefect waits is known, so a source's
# Retry-After is topped up to, never added to (``retrying.transient_only``).
@task(
    name="Fetch the district's feed",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def fetch_feed(url: str, settings: Settings, validators: Mapping[str, str] | None = None) -> district.Fetched:
    """A district feed (cases or vaccination): fetched whole, size-capped, retried on transient errors only;
    with ``validators``, a conditional GET (the watch's)."""
    fetched = district.fetch(
        url, timeout=settings.fetch_timeout_seconds, max_bytes=settings.fetch_max_bytes, validators=validators
    )
    if fetched.not_modified:
        get_run_logger().info("%s: not modified (HTTP 304)", url)
    else:
        get_run_logger().info("Fetched %d bytes from %s (sha256 %s)", len(fetched.body), url, fetched.sha256[:12])
    return fetched


def fetch(
    url: str,
    settings: Settings,
    *,
    name: str = "Fetch the district's feed",
    validators: Mapping[str, str] | None = None,
) -> district.Fetched:
    """``fetch_feed`` with the settings' first retry delay (``fetch_backoff_seconds``, doubling)."""
    delays = exponential_backoff(backoff_factor=settings.fetch_backoff_seconds)
    return fetch_feed.with_options(name=name, retry_delay_seconds=delays)(url, settings, validators)


def school_year(as_of: date) -> int:
    """CPS school years are named by the calendar year they start in (July on)."""
    return as_of.year if as_of.month >= 7 else as_of.year - 1


@task(
    name="Look up new schools",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=transient_only,
    cache_policy=NO_CACHE,
)
def look_up_new_schools(school_ids: list[str], as_of: date, settings: Settings) -> pd.DataFrame:
    from cps_covid.rules import inputs

    logger = get_run_logger()
    found = []
    for school_id in school_ids:
        profile = None
        if settings.profile_url:
            profile = district.school_profile(
                settings.profile_url, school_id, school_year(as_of), timeout=settings.fetch_timeout_seconds
            )
        if profile is None:
            logger.warning("No school profile for new school %s: kept with its id, without coordinates", school_id)
        else:
            found.append(profile | {"CPS_School_ID": school_id})
    return inputs.profiles_frame(found)
