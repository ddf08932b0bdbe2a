"""Tasks of the vaccination and enrolment update: fetch, validate, merge-and-publish, report.

The publish task races the case flow for ``allCpsCovidData.csv``: it reads the
table with its ETag, merges the three columns into whatever it read and writes
with ``IfMatch``. When the case flow wrote in between, S3 answers 412 and the
task starts again from the read, so neither writer's columns are ever lost. The
open dataset's schools table holds the same figures: it is written with the table,
under the same conditions.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cps_covid.errors import ConcurrentWriteError, InputError
from cps_covid.publishing import ledger_store
from cps_covid.publishing.publication import PartlyWritten, publish_writes
from cps_covid.rules import history, open_data, outputs, publish_plan, vaccination
from cps_covid.rules.publish_plan import PlannedWrite, Written, plan_writes, with_the_dashboard
from cps_covid.rules.schema import LEADING_COLUMNS
from cps_covid.rules.summary import VaccinationSummary
from cps_covid.systems import district
from cps_covid.systems.storage import Storage
from tasks.validate import guarded_validation

KEYS = (publish_plan.SCHOOLS_KEY, publish_plan.TRANSPOSED_KEY)
ATTEMPTS = 5


@task(name="Validate the vaccination feed", cache_policy=NO_CACHE)
def validate_vaccination_feed(fetched: district.Fetched, docs_to: Storage | None = None) -> vaccination.VaccinationFeed:
    feed = guarded_validation(
        "vaccination-validation", lambda: vaccination.read_feed(fetched.body, fetched.url), docs_to
    )
    logger = get_run_logger()
    logger.info("Vaccination feed: %d schools", len(feed.figures))
    for warning in feed.warnings:
        logger.warning("Vaccination feed: %s", warning)
    return feed


def _read_and_merge(
    bucket: Storage, feed: vaccination.VaccinationFeed, dataset: outputs.Dataset
) -> tuple[vaccination.VaccinationResult, list[PlannedWrite]]:
    """The published table as it is now (with ETags), the figures merged in, the writes that changes (the open
    dataset's with the table's, never alone)."""
    name = publish_plan.SCHOOLS_KEY
    stored = bucket.get(publish_plan.SCHOOLS_KEY)
    if stored is None:
        raise InputError(f"{name} does not exist: the case flow publishes it first")
    transposed_etag = bucket.etag(publish_plan.TRANSPOSED_KEY)
    schools = history.read_table(stored.body, name)
    history.require_columns(schools, name, LEADING_COLUMNS)
    result = vaccination.apply_figures(schools, feed.figures)
    objects = {
        publish_plan.SCHOOLS_KEY: (history.csv_bytes(result.schools), publish_plan.CSV_TYPE),
        publish_plan.TRANSPOSED_KEY: (history.transposed_csv_bytes(result.schools), publish_plan.CSV_TYPE),
    }
    ledger, _ = ledger_store.read(bucket)
    objects |= replace(dataset, entries=ledger.in_effect()).objects(result.schools)
    etags = {
        publish_plan.SCHOOLS_KEY: stored.etag,
        publish_plan.TRANSPOSED_KEY: transposed_etag,
        **bucket.etags(open_data.OPEN_PREFIX),
    }
    return result, with_the_dashboard(plan_writes(objects, etags))


@task(name="Merge and publish the vaccination figures", cache_policy=NO_CACHE)
def publish_vaccination(
    feed: vaccination.VaccinationFeed,
    summary: VaccinationSummary,
    base_tags: dict[str, str],
    bucket: Storage,
    dataset: outputs.Dataset,
) -> VaccinationSummary:
    """Read (with ETags), merge, write only what changed under ``IfMatch``; a 412 starts again from the read.

    The loop is here, not in Prefect's task retries, so that every write of every
    attempt is reported (and invalidated) and the counts are those of the first read.
    """
    logger = get_run_logger()
    tags = dict(base_tags) | {"as-of": summary.as_of, "source-sha256": summary.source_sha256[:16]}
    done = summary.model_copy(deep=True)
    for attempt in range(1, ATTEMPTS + 1):
        result, writes = _read_and_merge(bucket, feed, dataset)
        done.attempts = attempt
        if attempt == 1:
            done.schools_in_feed, done.schools_updated = len(feed.figures), result.updated
            done.unknown_schools, done.unlisted_schools = result.unknown_ids, len(result.missing_ids)
            done.planned, done.warnings = [w.key for w in writes], feed.warnings
            done.events = list(result.events)
        if summary.dry_run:
            return done
        try:
            done.written += logged(publish_writes(bucket, writes, tags))
            return done
        except ConcurrentWriteError as err:  # every write of every attempt is reported, and invalidated
            done.written += logged(err.written if isinstance(err, PartlyWritten) else [])
            if attempt == ATTEMPTS:
                raise
            logger.warning("%s; reading it again (attempt %d of %d)", err, attempt + 1, ATTEMPTS)
            time.sleep(random.uniform(0.1, 0.5) * attempt)
    return done


def logged(written: list[Written]) -> list[Written]:
    """Each object written, in the run's log."""
    logger = get_run_logger()
    for done in written:
        logger.info("Wrote %s version %s", done.key, done.version_id)
    return written
