"""The alarm's words (pure): what a person reading the mail learns without opening the UI."""

from __future__ import annotations

from cps_covid.rules.alarms import SUBJECT_LIMIT, alert_text


def test_a_failure_alarm_says_which_run_of_which_deployment_failed_and_why() -> None:
    why = "SourceError: https://cps.example/feed.csv: HTTP 404 Not Found"
    subject, body = alert_text(
        "failed", "cps-covid-update", "update-2021-09-24", "Failed", "http://ui/runs/1", why, "2021-09-24"
    )
    assert subject == "cps-covid-update update-2021-09-24 Failed: HTTP 404 Not Found"
    assert "The flow run update-2021-09-24 of the deployment cps-covid-update ended in state Failed." in body
    assert "It was updating 2021-09-24." in body and f"Why: {why}" in body and "http://ui/runs/1" in body


def test_a_long_reason_is_cut_to_what_sns_takes() -> None:
    subject, _ = alert_text("failed", "cps-covid-rerun", "update-2021-09-24", "Crashed", "", "x" * 300)
    assert len(subject) == SUBJECT_LIMIT and subject.startswith("cps-covid-rerun update-2021-09-24 Crashed: xxx")


def test_without_a_reason_the_alarm_still_names_the_run() -> None:
    subject, body = alert_text("failed", "cps-covid-update", "update-2021-09-24", "TimedOut", "")
    assert subject == "cps-covid-update update-2021-09-24 TimedOut" and "Why:" not in body
