"""The ledger on its own: which payload each update applied and how far it got (no S3, no Prefect)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from entries import CLAIMED, entry

from cps_covid.rules.ledger import Entry, Ledger, lease, next_step


def test_an_empty_or_absent_ledger_has_no_entries() -> None:
    assert Ledger.parse(None).entries == [] and Ledger.parse(b"").entries == []


def test_it_reads_back_what_it_wrote_byte_for_byte() -> None:
    ledger = Ledger([entry("1", step="notified", changes=[{"CPS_School_ID": "609772", "new_cases": 2}])])
    again = Ledger.parse(ledger.dumps())
    assert again == ledger and again.dumps() == ledger.dumps()


def test_the_unfinished_entry_is_the_latest_not_notified() -> None:
    ledger = Ledger([entry("1", step="notified"), entry("2", step="published"), entry("3", step="notified")])
    assert ledger.unfinished().id == "2"
    assert Ledger([entry("1", step="notified")]).unfinished() is None


def test_applied_finds_the_same_payload_for_the_same_day_unless_rolled_back() -> None:
    ledger = Ledger([entry("1", step="notified", sha256="aa"), entry("2", step="published", sha256="bb")])
    assert ledger.applied("aa", "2021-09-23").id == "1"
    assert ledger.applied("aa", "2021-09-24") is None  # another day: applied again
    assert ledger.applied("bb", "2021-09-23") is None  # not finished: resumed, not skipped
    ledger.get("1").rolled_back = True
    assert ledger.applied("aa", "2021-09-23") is None


def test_a_lease_expires_after_the_reading_runs_length() -> None:
    claimed = entry("1")
    assert lease(CLAIMED, 900) == "2021-09-23T18:50:00+00:00"
    assert not claimed.lease_expired(datetime(2021, 9, 23, 18, 49, tzinfo=UTC), 900)
    assert claimed.lease_expired(datetime(2021, 9, 23, 18, 50, tzinfo=UTC), 900)
    assert claimed.lease_expired(CLAIMED, 0)  # an operator resumes at once


def test_arrivals_say_when_each_schools_cases_came_that_day() -> None:
    first = entry("1", step="notified", changes=[{"CPS_School_ID": "609772", "new_cases": 2}])
    later = entry(
        "2",
        step="notified",
        changes=[{"CPS_School_ID": 609772, "new_cases": 1}, {"CPS_School_ID": "610212", "new_cases": 3}],
    )
    other_day = entry("3", as_of="2021-09-24", changes=[{"CPS_School_ID": "609772", "new_cases": 9}])
    arrivals = Ledger([first, later, other_day]).arrivals("2021-09-23")
    assert set(arrivals) == {"609772", "610212"}
    assert [cases for _, cases in arrivals["609772"]] == [2, 1] and arrivals["610212"][0][1] == 3


def test_next_step_takes_an_update_through_its_steps_once() -> None:
    mailed, silent = {"message": "3 new cases"}, {"message": None}
    steps = ["claimed", "published", "invalidated", "notifying", "notified"]
    assert [next_step(entry("a", step=s, **mailed)) for s in steps] == [*steps[1:], None]
    assert next_step(entry("a", step="invalidated", **silent)) == "notified"  # nothing to mail
    assert next_step(entry("a", step="notifying", **mailed)) == "notified"  # never sent a second time


def test_transitions_return_a_new_ledger_and_leave_the_old_one_as_it_was() -> None:
    before = Ledger([entry("a", step="notified")])
    claimed = before.with_entry(entry("b"))
    advanced = claimed.advanced("b", "published", versions={"k": "v1"})
    released = advanced.without("b")
    assert [e.id for e in before.entries] == ["a"] and claimed.get("b").step == "claimed"
    assert (advanced.get("b").step, advanced.get("b").versions) == ("published", {"k": "v1"})
    assert [e.id for e in released.entries] == ["a"] and advanced.get("a") is before.get("a")


def test_a_rollback_marks_the_updates_claimed_after_its_moment_only() -> None:
    later = replace(entry("b", step="notified"), claimed_at=CLAIMED.replace(hour=CLAIMED.hour + 1).isoformat())
    before = Ledger([entry("a", step="notified"), later])

    rolled = before.rolled_back_after(CLAIMED)

    assert [e.rolled_back for e in rolled.entries] == [False, True]
    assert not any(e.rolled_back for e in before.entries)  # a new ledger: the old one as it was


def test_an_entry_is_claimed_for_one_payload_and_one_day_then_planned() -> None:
    from cps_covid.rules.publish_plan import PlannedWrite, md5

    claimed = Entry.claiming(
        as_of=date(2021, 9, 23),
        now=CLAIMED,
        flow_run="run-1",
        raw_key="raw/2021/09/23/183500-ab.csv",
        sha256="abcdef0123",
        source="http://127.0.0.1/feed.csv",
        fetched_at=CLAIMED,
        lease_seconds=900,
        new_season=None,
        ignore_ids=frozenset({"610377", "609703"}),
        profiles=[],
        changes=[{"CPS_School_ID": "609772", "new_cases": 2}],
    )
    assert (claimed.id, claimed.step, claimed.lease_until) == (
        "2021-09-23-183500-abcdef01",
        "claimed",
        lease(CLAIMED, 900),
    )
    assert claimed.ignore_ids == ["609703", "610377"]
    planned = claimed.planned([PlannedWrite("data/CPStotals.csv", b"t", "text/csv", None)], "subject", "message")
    assert planned.objects == {"data/CPStotals.csv": md5(b"t")} and planned.paths == ["/data/CPStotals.csv"]
    assert (planned.subject, planned.message) == ("subject", "message") and claimed.objects == {}


def test_arrivals_count_the_update_being_claimed_without_changing_the_ledger() -> None:
    ledger = Ledger([entry("1", step="notified", changes=[{"CPS_School_ID": "609772", "new_cases": 2}])])
    claiming = entry("2", changes=[{"CPS_School_ID": "609772", "new_cases": 1}])
    assert ledger.arrivals("2021-09-23", extra=claiming) == ledger.with_entry(claiming).arrivals("2021-09-23")
    assert [e.id for e in ledger.entries] == ["1"]
