"""The feed watch's rule: what a poll's answer means, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cps_covid.rules.ledger import Entry, Ledger
from cps_covid.rules.watch import WatchState, verdict, was_applied

NOW = datetime(2021, 9, 23, 15, 0, tzinfo=UTC)
URL = "https://api.cps.edu/health/cps/covid"


def answered(state: WatchState, sha: str, etag: str = "", modified: str = "") -> WatchState:
    return state.answered(URL, not_modified=False, sha256=sha, etag=etag, last_modified=modified)


def test_the_validators_go_only_to_the_source_that_gave_them() -> None:
    state = answered(WatchState(), "a" * 64, '"v1"', "Thu, 23 Sep 2021 13:50:00 GMT")
    assert state.validators(URL) == {"If-None-Match": '"v1"', "If-Modified-Since": "Thu, 23 Sep 2021 13:50:00 GMT"}
    assert state.validators("https://elsewhere/feed.csv") == {}  # another source: ask it unconditionally
    assert answered(WatchState(), "a" * 64).validators(URL) == {}  # no validators: the body's hash stands in
    assert WatchState().validators(URL) == {}


def test_a_304_keeps_the_body_known_and_a_body_replaces_it() -> None:
    state = answered(WatchState(), "a" * 64, '"v1"')
    assert state.answered(URL, not_modified=True, sha256="ignored", etag="", last_modified="") == state
    changed = answered(state, "b" * 64, '"v2"')
    assert (changed.sha256, changed.etag) == ("b" * 64, '"v2"')


def test_a_new_body_is_signalled_once() -> None:
    state = answered(WatchState(), "b" * 64)
    first = verdict(state, applied=False, now=NOW, window_seconds=120)
    assert first.signal and first.state.signalled == "b" * 64 and first.reason == "changed to bbbbbbbbbbbb"
    second = verdict(first.state, applied=False, now=NOW + timedelta(minutes=1), window_seconds=120)
    assert not second.signal and "its update is due" in second.reason  # one event per change, however long


def test_a_body_the_ledger_shows_applied_is_no_change_and_the_ledger_is_not_read_again() -> None:
    state = answered(WatchState(), "a" * 64)
    assert state.needs_ledger
    decided = verdict(state, applied=True, now=NOW, window_seconds=120)
    assert not decided.signal and decided.reason.startswith("no change: body aaaaaaaaaaaa is applied")
    assert not decided.state.needs_ledger  # the next polls of the same body skip the ledger


def test_a_second_change_inside_the_triggers_window_waits_for_it_to_pass() -> None:
    """Prefect's trigger would drop it: the watch signals it once the window is over, if still not applied."""
    first = verdict(answered(WatchState(), "b" * 64), applied=False, now=NOW, window_seconds=120).state
    second = answered(first, "c" * 64)
    held = verdict(second, applied=False, now=NOW + timedelta(seconds=60), window_seconds=120)
    assert not held.signal and "after the trigger's window" in held.reason
    assert held.state.signalled == "b" * 64  # not marked signalled: the next poll asks again
    later = verdict(held.state, applied=False, now=NOW + timedelta(seconds=121), window_seconds=120)
    assert later.signal and later.state.signalled == "c" * 64
    picked_up = verdict(held.state, applied=True, now=NOW + timedelta(seconds=121), window_seconds=120)
    assert not picked_up.signal  # the first run read the latest body: a burst made one run


def test_applied_means_a_finished_update_in_effect_with_that_body() -> None:
    def entry(sha: str, step: str) -> Entry:
        return Entry(
            id=f"2021-09-23-150000-{sha[:8]}",
            flow_run="run",
            as_of="2021-09-23",
            raw_key="raw/x",
            sha256=sha,
            source=URL,
            fetched_at=NOW.isoformat(),
            claimed_at=NOW.isoformat(),
            lease_until=NOW.isoformat(),
            step=step,  # type: ignore[arg-type]
        )

    ledger = Ledger([entry("a" * 64, "notified"), entry("b" * 64, "claimed")])
    assert was_applied(ledger, "a" * 64)
    assert not was_applied(ledger, "b" * 64)  # claimed, not finished: its update is still due
    assert not was_applied(Ledger(), "a" * 64)


def test_the_state_round_trips_through_its_json() -> None:
    state = verdict(answered(WatchState(), "b" * 64, '"v"'), applied=False, now=NOW, window_seconds=120).state
    assert WatchState.parse(state.dumps()) == state
    assert WatchState.parse(None) == WatchState()
