"""What a run did: the one model both flows return, the CLI prints and the Prefect UI shows.

``RunSummary`` holds what every run has (the source, what it planned and wrote,
the invalidation, the merge's typed events, the run's own notes, warnings) and
renders it; ``UpdateSummary`` and ``VaccinationSummary`` add their counts and
headline. A flow returns ``as_dict()`` (JSON); ``model_validate`` reads it back
with the events typed again, so the CLI prints what the flow saw.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cps_covid.rules.merge import Event
from cps_covid.rules.publish_plan import DATA_KEYS, PAGE_KEY, Written


class RunSummary(BaseModel):
    """The parts of a run's summary that every flow has, and how they read."""

    model_config = ConfigDict(extra="forbid")

    ARTIFACT_KEY: ClassVar[str] = "run-summary"
    TITLE: ClassVar[str] = "CPS COVID run"
    NOTHING: ClassVar[str] = "nothing changed: no object written, no invalidation"

    as_of: str
    source: str
    source_sha256: str
    dry_run: bool
    planned: list[str] = Field(default_factory=list)
    written: list[Written] = Field(default_factory=list)
    invalidation_id: str | None = None
    events: list[Event] = Field(default_factory=list)
    """The data corrections and notable changes of the merge, typed (``merge.Tag``)."""
    notes: list[str] = Field(default_factory=list)
    """What the run itself did besides (resumed an update, posted, told the operators), in order."""
    warnings: list[str] = Field(default_factory=list)

    def as_dict(self) -> dict:
        return self.model_dump(mode="json")

    def headline(self) -> str:
        raise NotImplementedError

    def _text_lines(self) -> list[str]:
        """The kind's own lines of ``text()``, after the invalidation."""
        return []

    def _markdown_lines(self) -> list[str]:
        """The kind's own sections of ``markdown()``, after the objects written."""
        return []

    def text(self) -> str:
        """The short summary the CLI and the demo print."""
        lines = [self.headline()]
        lines += [f"  wrote {w.key} (version {w.version_id})" for w in self.written]
        if self.dry_run:
            lines += [f"  would write {k}" for k in self.planned]
        if not self.written and not self.planned:
            lines.append(f"  {self.NOTHING}")
        if self.invalidation_id:
            lines.append(f"  CloudFront invalidation {self.invalidation_id}")
        lines += self._text_lines()
        lines += [f"  {e}" for e in self.events]
        lines += [f"  {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The run's artifact: headline, objects written, the kind's sections, the events by kind, notes, warnings."""
        lines = [
            f"# {self.TITLE} for {self.as_of}{' (dry run)' if self.dry_run else ''}",
            f"Source: `{self.source}` (sha256 `{self.source_sha256[:12]}`)",
            "",
            self.headline_markdown(),
            "",
            "## Objects written",
        ]
        lines += [f"- `{w.key}` version `{w.version_id}`" for w in self.written] or ["- none: nothing changed"]
        if self.planned and not self.written:
            lines += [f"- would write `{k}`" for k in self.planned]
        lines += self._markdown_lines()
        if self.events:  # a list, not a table: the UI does not wrap a table's cells, and the details are long
            lines += ["", "## Corrections and changes", *[f"- {_event_line(e)}" for e in self.events]]
        if self.notes:
            lines += ["", "## Run notes", *[f"- {n}" for n in self.notes]]
        if self.warnings:
            lines += ["", "## Warnings", *[f"- {w}" for w in self.warnings]]
        return "\n".join(lines)

    def headline_markdown(self) -> str:
        """The artifact's headline, bold."""
        return f"**{self.headline()}**"


def _event_line(event: Event) -> str:
    """``**correction** ADDAMS (609772), -1 on 20210923: ...``: the kind first, so the list reads by kind."""
    counted = f", {event.cases}" if event.cases is not None else ""
    counted += f" on {event.day}" if event.day else ""
    return f"**{event.tag}** {event.school} ({event.school_id}){counted}: {event.detail}"


class UpdateSummary(RunSummary):
    """The case update's run: the new cases, the mail it sent, where it published."""

    ARTIFACT_KEY: ClassVar[str] = "update-summary"
    TITLE: ClassVar[str] = "CPS COVID update"
    NOTHING: ClassVar[str] = "nothing changed: no object written, no invalidation, no notification"

    raw_key: str = ""
    new_cases: int = 0
    schools_affected: int = 0
    changes: list[dict] = Field(default_factory=list)
    """``School``, ``CPS_School_ID`` and ``new_cases`` of each school whose season total moved."""
    message_id: str | None = None
    subject: str | None = None
    message: str | None = None
    bucket: str = ""
    site_url: str = ""

    def headline(self) -> str:
        return f"{self.new_cases} new case(s) at {self.schools_affected} school(s) for {self.as_of}"

    def headline_markdown(self) -> str:
        return f"**{self.new_cases} new case(s) at {self.schools_affected} school(s).**"

    def links(self) -> list[str]:
        """The published page and CSVs as a visitor opens them."""
        site = self.site_url.rstrip("/")
        return [f"[{key}]({site}/{key})" for key in (PAGE_KEY, *DATA_KEYS)] if site else []

    def table(self) -> list[dict]:
        """The new-cases table artifact: readable headers and a total row."""
        rows = [
            {"School": c["School"], "CPS school id": c["CPS_School_ID"], "New cases": c["new_cases"]}
            for c in self.changes
        ]
        return [*rows, {"School": "Total", "CPS school id": "", "New cases": sum(c["new_cases"] for c in self.changes)}]

    def _text_lines(self) -> list[str]:
        return [f"  SNS message {self.message_id}: {self.subject}"] if self.message_id else []

    def _markdown_lines(self) -> list[str]:
        lines = []
        if self.changes:
            lines += ["", "## New cases", "", "| School | Id | New cases |", "|---|---|---:|"]
            lines += [f"| {c['School']} | {c['CPS_School_ID']} | {c['new_cases']} |" for c in self.changes]
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
        return lines


class VaccinationSummary(RunSummary):
    """The vaccination update's run: the schools it changed, the ones it could not place, its 412 retries."""

    ARTIFACT_KEY: ClassVar[str] = "vaccination-summary"
    TITLE: ClassVar[str] = "Vaccination and enrolment update"

    schools_in_feed: int = 0
    schools_updated: int = 0
    unknown_schools: list[str] = Field(default_factory=list)
    unlisted_schools: int = 0
    attempts: int = 1

    def headline(self) -> str:
        return (
            f"vaccination figures of {self.schools_in_feed} school(s) for {self.as_of}: "
            f"{self.schools_updated} school(s) changed"
        )

    def headline_markdown(self) -> str:
        return (
            f"**{self.schools_updated} of {self.schools_in_feed} school(s) changed.** "
            f"{self.unlisted_schools} school(s) of the history are not in the feed (figures kept)."
        )

    def _text_lines(self) -> list[str]:
        if not self.unknown_schools:
            return []
        return [f"  not in the case history (ignored): {', '.join(self.unknown_schools)}"]

    def _markdown_lines(self) -> list[str]:
        lines = [
            "",
            f"Invalidation: `{self.invalidation_id}`" if self.invalidation_id else "Invalidation: none",
            f"Attempts (412 from a concurrent writer): {self.attempts}",
        ]
        if self.unknown_schools:
            lines += ["", "## Not in the case history (ignored)", *[f"- {s}" for s in self.unknown_schools]]
        return lines
