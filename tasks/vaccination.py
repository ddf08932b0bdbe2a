"""Tasks of the vaccination and enrolment update: fetch, validate, merge-and-publish, report.

The publish task races the case flow for ``allCpsCovidData.csv``: it reads the
table with its ETag, merges the three columns into whatever it read and writes
with ``IfMatch``. When the case flow wrote in between, S3 answers 412 and the
task starts again from the read, so neither writer's columns are ever lost.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from cps_covid import history, pipeline, vaccination
from cps_covid.errors import ConcurrentWriteError, InputError
from cps_covid.io import district, s3
from cps_covid.publish_plan import PlannedWrite, plan_writes
from cps_covid.schema import LEADING_COLUMNS
from cps_covid.settings import Settings
from tasks.validate import guarded_validation

KEYS = (pipeline.SCHOOLS_KEY, pipeline.TRANSPOSED_KEY)
ATTEMPTS = 5


@dataclass
class VaccinationSummary:
    as_of: str
    source: str
    source_sha256: str
    dry_run: bool
    schools_in_feed: int = 0
    schools_updated: int = 0
    unknown_schools: list[str] = field(default_factory=list)
    unlisted_schools: int = 0
    planned: list[str] = field(default_factory=list)
    written: list[dict] = field(default_factory=list)
    attempts: int = 1
    invalidation_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [
            f"vaccination figures of {self.schools_in_feed} school(s) for {self.as_of}: "
            f"{self.schools_updated} school(s) changed"
        ]
        lines += [f"  wrote {w['key']} (version {w['version_id']})" for w in self.written]
        if self.dry_run:
            lines += [f"  would write {k}" for k in self.planned]
        if not self.written and not self.planned:
            lines.append("  nothing changed: no object written, no invalidation")
        if self.invalidation_id:
            lines.append(f"  CloudFront invalidation {self.invalidation_id}")
        if self.unknown_schools:
            lines.append(f"  not in the case history (ignored): {', '.join(self.unknown_schools)}")
        lines += [f"  {e}" for e in self.events]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [
            f"# Vaccination and enrolment update for {self.as_of}{' (dry run)' if self.dry_run else ''}",
            f"Source: `{self.source}` (sha256 `{self.source_sha256[:12]}`)",
            "",
            f"**{self.schools_updated} of {self.schools_in_feed} school(s) changed.** "
            f"{self.unlisted_schools} school(s) of the history are not in the feed (figures kept).",
            "",
            "## Objects written",
        ]
        lines += [f"- `{w['key']}` version `{w['version_id']}`" for w in self.written] or ["- none"]
        lines += [f"- would write `{k}`" for k in self.planned if not self.written]
        lines += [
            "",
            f"Invalidation: `{self.invalidation_id}`",
            f"Attempts (412 from a concurrent writer): {self.attempts}",
        ]
        if self.events:
            lines += ["", "## Events"] + [f"- {e}" for e in self.events]
        if self.unknown_schools or self.warnings:
            lines += ["", "## Warnings"]
            lines += [f"- not in the case history, ignored: {s}" for s in self.unknown_schools]
            lines += [f"- {w}" for w in self.warnings]
        return "\n".join(lines)


@task(name="Validate the vaccination feed", cache_policy=NO_CACHE)
def validate_vaccination_feed(
    fetched: district.Fetched, settings: Settings | None = None
) -> vaccination.VaccinationFeed:
    feed = guarded_validation(
        "vaccination-validation", lambda: vaccination.read_feed(fetched.body, fetched.url), settings
    )
    logger = get_run_logger()
    logger.info("Vaccination feed: %d schools", len(feed.figures))
    for warning in feed.warnings:
        logger.warning("Vaccination feed: %s", warning)
    return feed


def _read_and_merge(
    bucket: s3.Bucket, feed: vaccination.VaccinationFeed
) -> tuple[vaccination.VaccinationResult, list[PlannedWrite]]:
    """The published table as it is now (with ETags), the figures merged in, the writes that changes."""
    name = f"s3://{bucket.name}/{pipeline.SCHOOLS_KEY}"
    stored = bucket.get(pipeline.SCHOOLS_KEY)
    if stored is None:
        raise InputError(f"{name} does not exist: the case flow publishes it first")
    transposed_etag = s3.etag_of(bucket, pipeline.TRANSPOSED_KEY)
    schools = history.read_table(stored.body, name)
    history.require_columns(schools, name, LEADING_COLUMNS)
    result = vaccination.apply_figures(schools, feed.figures)
    objects = {
        pipeline.SCHOOLS_KEY: (history.csv_bytes(result.schools), pipeline.CSV_TYPE),
        pipeline.TRANSPOSED_KEY: (history.transposed_csv_bytes(result.schools), pipeline.CSV_TYPE),
    }
    return result, plan_writes(objects, {pipeline.SCHOOLS_KEY: stored.etag, pipeline.TRANSPOSED_KEY: transposed_etag})


@task(name="Merge and publish the vaccination figures", cache_policy=NO_CACHE)
def publish_vaccination(
    feed: vaccination.VaccinationFeed, summary: VaccinationSummary, settings: Settings
) -> VaccinationSummary:
    """Read (with ETags), merge, write only what changed under ``IfMatch``; a 412 starts again from the read.

    The loop is here, not in Prefect's task retries, so that every write of every
    attempt is reported (and invalidated) and the counts are those of the first read.
    """
    logger = get_run_logger()
    bucket = s3.bucket_of(settings)
    tags = dict(settings.tags) | {"as-of": summary.as_of, "source-sha256": summary.source_sha256[:16]}
    done = VaccinationSummary(**summary.as_dict())
    for attempt in range(1, ATTEMPTS + 1):
        result, writes = _read_and_merge(bucket, feed)
        done.attempts = attempt
        if attempt == 1:
            done.schools_in_feed, done.schools_updated = len(feed.figures), result.updated
            done.unknown_schools, done.unlisted_schools = result.unknown_ids, len(result.missing_ids)
            done.planned, done.warnings = [w.key for w in writes], feed.warnings
            done.events = [str(e) for e in result.events]
        if summary.dry_run:
            return done
        try:
            for write in writes:
                written = bucket.put(
                    write.key, write.body, content_type=write.content_type, tags=tags, if_match=write.if_match
                )
                logger.info("Wrote s3://%s/%s version %s", settings.bucket, written.key, written.version_id)
                done.written.append({"key": written.key, "version_id": written.version_id, "etag": written.etag})
            return done
        except ConcurrentWriteError as err:
            if attempt == ATTEMPTS:
                raise
            logger.warning("%s; reading it again (attempt %d of %d)", err, attempt + 1, ATTEMPTS)
            time.sleep(random.uniform(0.1, 0.5) * attempt)
    return done


@task(name="Report the vaccination update", cache_policy=NO_CACHE)
def report_vaccination(summary: VaccinationSummary) -> None:
    create_markdown_artifact(
        key="vaccination-summary", markdown=summary.markdown(), description="CPS vaccination and enrolment update"
    )
