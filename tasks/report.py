"""The run summary: returned by the flow, printed by the CLI, shown in the Prefect UI."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed, State

from cps_covid import clock, pipeline
from cps_covid.errors import CpsCovidError
from cps_covid.settings import Settings

CHICAGO = ZoneInfo("America/Chicago")


@dataclass
class RunSummary:
    as_of: str
    source: str
    source_sha256: str
    dry_run: bool
    raw_key: str = ""
    new_cases: int = 0
    schools_affected: int = 0
    changes: list[dict] = field(default_factory=list)
    written: list[dict] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    invalidation_id: str | None = None
    message_id: str | None = None
    subject: str | None = None
    message: str | None = None
    events: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bucket: str = ""
    site_url: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def links(self) -> list[str]:
        """The published page and CSVs as a visitor opens them."""
        site = self.site_url.rstrip("/")
        return [f"[{key}]({site}/{key})" for key in (pipeline.PAGE_KEY, *pipeline.DATA_KEYS)] if site else []

    def table(self) -> list[dict]:
        """The new-cases table artifact: readable headers and a total row."""
        rows = [
            {"School": c["School"], "CPS school id": c["CPS_School_ID"], "New cases": c["new_cases"]}
            for c in self.changes
        ]
        return [*rows, {"School": "Total", "CPS school id": "", "New cases": sum(c["new_cases"] for c in self.changes)}]

    def markdown(self) -> str:
        lines = [
            f"# CPS COVID update for {self.as_of}{' (dry run)' if self.dry_run else ''}",
            f"Source: `{self.source}` (sha256 `{self.source_sha256[:12]}`)",
            "",
            f"**{self.new_cases} new case(s) at {self.schools_affected} school(s).**",
            "",
        ]
        if self.changes:
            lines += ["| School | Id | New cases |", "|---|---|---:|"]
            lines += [f"| {c['School']} | {c['CPS_School_ID']} | {c['new_cases']} |" for c in self.changes]
            lines.append("")
        lines.append("## Objects written")
        lines += [f"- `{w['key']}` version `{w['version_id']}`" for w in self.written] or ["- none: nothing changed"]
        if self.planned and not self.written:
            lines += [f"- would write `{k}`" for k in self.planned]
        message = f"`{self.message_id}`: {self.subject}" if self.message_id else "no message (nothing new)"
        invalidation = f"`{self.invalidation_id}`" if self.invalidation_id else "none (nothing written)"
        lines += [
            "",
            f"Bucket: `s3://{self.bucket}`" if self.bucket else "Bucket: not configured",
            f"Invalidation: {invalidation}",
            f"SNS message: {message}",
        ]
        if self.links():
            lines.append(f"Published: {', '.join(self.links())}")
        if self.events or self.warnings:
            lines += ["", "## Corrections and warnings"]
            lines += [f"- {e}" for e in [*self.events, *self.warnings]]
        return "\n".join(lines)

    def text(self) -> str:
        """The short summary the CLI and the demo print."""
        lines = [f"{self.new_cases} new case(s) at {self.schools_affected} school(s) for {self.as_of}"]
        lines += [f"  wrote {w['key']} (version {w['version_id']})" for w in self.written]
        if self.dry_run:
            lines += [f"  would write {k}" for k in self.planned]
        if not self.written and not self.planned:
            lines.append("  nothing changed: no object written, no invalidation, no notification")
        if self.invalidation_id:
            lines.append(f"  CloudFront invalidation {self.invalidation_id}")
        if self.message_id:
            lines.append(f"  SNS message {self.message_id}: {self.subject}")
        lines += [f"  {e}" for e in self.events]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@task(name="Report the run", cache_policy=NO_CACHE)
def report_run(summary: RunSummary) -> None:
    create_markdown_artifact(key="update-summary", markdown=summary.markdown(), description="CPS COVID update")
    if summary.changes:
        create_table_artifact(key="new-cases-by-school", table=summary.table(), description="New cases by school")


def failed_with(err: CpsCovidError) -> State:
    """A flow's final state for an error of ours: its class and words, without Prefect logging it a second time
    (the task that raised it logged it, with its traceback)."""
    return Failed(message=f"{type(err).__name__}: {err}", data=err)


def run_name(prefix: str) -> str:
    """``update-2021-09-24 at 13:54:02``: the day the run updates (a cron run's resolved today) and when it
    started, so reruns of one day are told apart in the UI."""
    started = (flow_run.scheduled_start_time or datetime.now(UTC)).astimezone(CHICAGO)
    as_of = flow_run.parameters.get("as_of") or _today(started).isoformat()
    suffix = " (dry run)" if flow_run.parameters.get("dry_run") else ""
    return f"{prefix}-{as_of} at {started:%H:%M:%S}{suffix}"


def _today(now: datetime) -> date:
    """The day a run without ``as_of`` updates; a settings error is the flow body's to report, not the name's."""
    try:
        return clock.today(Settings.load().replay_clock, now)
    except CpsCovidError:
        return now.date()


def cli_outcome(command: str, state: State, summary: Callable[..., Any]) -> int:
    """What a ``cps-covid`` command prints for a flow's final state, and its exit code (3: cancelled, 1: not done)."""
    if state.is_cancelled():
        print(f"{command}: {state.message}", file=sys.stderr)
        return 3
    if not state.is_completed():
        print(f"{command}: the update failed ({state.name}): {state.message}", file=sys.stderr)
        return 1
    print(summary(**state.result()).text())
    return 0
