"""The feed watch as a flow: real Prefect API (its events), moto server, loopback source."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
from prefect.events.worker import EventsWorker

from cps_covid.rules import watch
from flows.update import run_update
from flows.watch import run_watch
from local.feed_server import Route

pytestmark = pytest.mark.usefixtures("prefect_api")

ROOT = Path(__file__).resolve().parents[2]
FEED = (ROOT / "data/feeds/2021-09-23-cases.csv").read_bytes()


def events_since(start) -> list:
    EventsWorker.drain_all()  # what this process emitted has reached the server
    with get_client(sync_client=True) as client:
        found = client.read_events(
            filter=EventFilter(event=EventNameFilter(name=[watch.EVENT]), occurred=EventOccurredFilter(since=start)),
            limit=50,
        )
    return found.events


def poll() -> str:
    state = run_watch()
    assert state.is_completed(), state.message
    return state.message


def test_the_watch_imports_neither_pandas_nor_great_expectations() -> None:
    """It runs every minute in a fresh process: the cost of an update's imports would be paid each time."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, flows.watch; print(sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'prefect'" in loaded and "'flows.watch'" in loaded
    assert "'pandas'" not in loaded and "'great_expectations'" not in loaded and "'numpy'" not in loaded


def test_without_validators_the_hash_tells_a_change_and_no_change_emits_nothing(aws, feeds) -> None:
    start = datetime.now(UTC)
    assert poll() == poll_message_of(FEED)
    assert len(events_since(start)) == 1
    assert poll().endswith("its update is due")  # the same body again: no second event
    assert len(events_since(start)) == 1

    assert run_update(as_of=date(2021, 9, 23)).is_completed()  # what the trigger would run
    assert poll().startswith("no change: body ")  # the ledger has it now
    (event,) = events_since(start)
    assert event.payload["sha256"] == hashlib.sha256(FEED).hexdigest()
    assert event.payload["source"] == feeds.url("/feed.csv") and event.payload["etag"] == ""
    assert feeds.requests["/feed.csv"] == 4 and feeds.not_modified["/feed.csv"] == 0  # a body each time


def poll_message_of(body: bytes) -> str:
    return f"changed to {hashlib.sha256(body).hexdigest()[:12]}"


def test_a_failing_source_is_retried_then_fails_the_run_naming_it(aws, feeds, monkeypatch) -> None:
    monkeypatch.setenv("CPS_COVID_FETCH_BACKOFF_SECONDS", "0.05")
    flaky = feeds.route("/flaky.csv", Route(FEED, failures=[(503, {}), (503, {})]))
    assert run_watch(source=flaky).is_completed()
    assert feeds.requests["/flaky.csv"] == 3  # two 503s, retried

    gone = run_watch(source=feeds.url("/gone.csv"))
    assert gone.is_failed()
    assert gone.message == f"SourceError: {feeds.url('/gone.csv')}: HTTP 404 Not Found"
