"""The operators' notices in words (pure): the failure alarm, the recovery notice, the alarm marker."""

from __future__ import annotations

from datetime import date

from cps_covid.rules.alarms import SUBJECT_LIMIT, alarm_key, in_school_year, recovery_text


def test_a_recovery_names_the_run_that_healed_and_the_one_that_failed() -> None:
    subject, body = recovery_text(
        "cps-covid-update", "update-2021-09-15 at 18:32:30", "update-2021-09-14 at 18:32:00", "Failed", "http://ui/r/2"
    )
    assert subject == "cps-covid-update recovered: update-2021-09-15 at 18:32:30 Completed"
    assert (
        "The previous run, update-2021-09-14 at 18:32:00, ended Failed: the deployment has healed" in body
        and "http://ui/r/2" in body
    )
    assert len(recovery_text("d" * 90, "r", "f", "Crashed", "")[0]) == SUBJECT_LIMIT


def test_one_marker_per_failing_run_kept_with_the_internal_state() -> None:
    assert alarm_key("0f9c") == "state/alarms/0f9c.json"


def test_the_school_year_wraps_over_the_new_year() -> None:
    assert in_school_year(date(2022, 1, 10), "08-15/06-20") and not in_school_year(date(2022, 7, 4), "08-15/06-20")
