"""The run summary: one model for both flows, typed events through the flow's JSON result."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cps_covid.rules.merge import Event, Tag
from cps_covid.rules.summary import UpdateSummary, VaccinationSummary

CORRECTION = Event(
    Tag.CORRECTION, "609772", "ADDAMS", "season total went down by 1: applied as -1 on 20210923", -1, "20210923"
)
ADDED = Event(Tag.SCHOOL_ADDED, "400001", "NEW SCHOOL", "added after ADDAMS, with its profile")


def update(**fields: object) -> UpdateSummary:
    base = {"as_of": "2021-09-23", "source": "http://feed/x.csv", "source_sha256": "ab" * 32, "dry_run": False}
    return UpdateSummary.model_validate(base | fields)


def test_the_flow_result_reads_back_with_its_events_typed() -> None:
    summary = update(events=[CORRECTION, ADDED], notes=["[resumed] update 3 of run r stopped after 'published'"])

    result = summary.as_dict()  # what the flow returns: JSON only
    assert result["events"][0] == {
        "tag": "correction",
        "school_id": "609772",
        "school": "ADDAMS",
        "detail": CORRECTION.detail,
        "cases": -1,
        "day": "20210923",
        "field": None,
        "old": None,
        "new": None,
    }
    again = UpdateSummary.model_validate(result)
    assert again.events == [CORRECTION, ADDED] and again.events[0].tag is Tag.CORRECTION
    assert again == summary


def test_a_misspelt_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="new_case"):
        update(new_case=3)


def test_the_text_lists_writes_then_events_notes_and_warnings_in_that_order() -> None:
    summary = update(
        new_cases=2,
        schools_affected=1,
        written=[{"key": "allCpsCovidData.csv", "version_id": "v1", "etag": '"e"'}],
        invalidation_id="I1",
        message_id="m-1",
        subject="CPS COVID update: 2 new cases",
        events=[CORRECTION],
        notes=["[social] x: posted"],
        warnings=["drift at 1 school"],
    )
    assert summary.text().splitlines() == [
        "2 new case(s) at 1 school(s) for 2021-09-23",
        "  wrote allCpsCovidData.csv (version v1)",
        "  CloudFront invalidation I1",
        "  SNS message m-1: CPS COVID update: 2 new cases",
        f"  [correction] ADDAMS (609772): {CORRECTION.detail}",
        "  [social] x: posted",
        "  warning: drift at 1 school",
    ]


def test_each_kind_says_nothing_changed_its_own_way() -> None:
    assert update().text().endswith("nothing changed: no object written, no invalidation, no notification")
    vaccination = VaccinationSummary(as_of="2021-09-23", source="s", source_sha256="0" * 64, dry_run=False)
    assert vaccination.text().endswith("nothing changed: no object written, no invalidation")


def test_the_artifact_lists_events_by_kind_apart_from_the_run_notes() -> None:
    markdown = update(events=[CORRECTION, ADDED], notes=["operators told"]).markdown()

    events = markdown.split("## Corrections and changes", 1)[1].split("## Run notes", 1)[0]
    assert events.strip().splitlines() == [
        f"- **correction** ADDAMS (609772), -1 on 20210923: {CORRECTION.detail}",
        f"- **school-added** NEW SCHOOL (400001): {ADDED.detail}",
    ]
    notes = markdown.split("## Run notes", 1)[1]
    assert notes.strip() == "- operators told"
    assert "## Warnings" not in markdown


def test_the_vaccination_artifact_names_its_attempts_and_the_schools_it_could_not_place() -> None:
    summary = VaccinationSummary(
        as_of="2021-09-23",
        source="s",
        source_sha256="0" * 64,
        dry_run=True,
        schools_in_feed=3,
        schools_updated=2,
        unknown_schools=["999999"],
        planned=["allCpsCovidData.csv"],
        attempts=2,
    )
    markdown = summary.markdown()
    assert markdown.startswith("# Vaccination and enrolment update for 2021-09-23 (dry run)")
    assert "**2 of 3 school(s) changed.**" in markdown and "- would write `allCpsCovidData.csv`" in markdown
    assert "Attempts (412 from a concurrent writer): 2" in markdown and "- 999999" in markdown
    assert "  not in the case history (ignored): 999999" in summary.text()
