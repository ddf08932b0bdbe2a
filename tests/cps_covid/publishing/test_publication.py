"""The publication's state machine at every crash boundary, in memory: no server, milliseconds.

The resources are the in-memory ones (``local.memory``): S3's conditional writes and
versions, CloudFront's and SNS's behaviour that matters here (the same caller reference
gives the same invalidation; a refused publish raises). A crash is a
``Killed`` raised before a chosen write or call, which nothing in the code catches, as a
SIGKILL would stop the process. ``tests/flows/test_guarantees.py`` keeps the same
boundaries end to end, with a real flow process killed by the fault proxy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
import pytest
from entries import entry as make_entry

from cps_covid.errors import AwsCallFailed, ConcurrentWriteError
from cps_covid.publishing import ledger_store, publication
from cps_covid.publishing.ledger_store import UpdateClaimedElsewhere
from cps_covid.publishing.publication import NothingWritten, PartlyWritten
from cps_covid.publishing.resources import Resources
from cps_covid.rules.ledger import LEDGER_KEY, Entry, Ledger
from cps_covid.rules.publish_plan import (
    PAGE_KEY,
    SCHOOLS_KEY,
    TOTALS_KEY,
    TRANSPOSED_KEY,
    PlannedWrite,
    Written,
    plan_writes,
)
from cps_covid.systems.storage import StoredObject
from local.memory import MemoryCdn, MemoryHeartbeat, MemoryStorage, MemoryTopic

SEEDED = {SCHOOLS_KEY: b"schools v0\n", TOTALS_KEY: b"totals v0\n", TRANSPOSED_KEY: b"transposed v0\n"}
PLANNED = {
    SCHOOLS_KEY: (b"schools v1\n", "text/csv"),
    TOTALS_KEY: (b"totals v1\n", "text/csv"),
    TRANSPOSED_KEY: (b"transposed v1\n", "text/csv"),
    PAGE_KEY: (b"<html>22 new cases</html>", "text/html"),
}
SUBJECT, MESSAGE = "CPS COVID update: 22 new cases (Sep. 23, 2021)", "New cases: 22"
TAGS = {"lifecycle": "true"}
ENTRY_ID = "2021-09-23-183500-aa"
RAW_KEY, RAW = f"raw/{ENTRY_ID}.csv", b'"CPS School ID"\n"609772"\n'
DAILY_FEED = "data/daily-json/2021-09-23.csv"
NOTICE = ("cps-covid: season SY2122 closed by the calendar", "SY2223 starts 2022-08-18")


class Killed(BaseException):
    """The process stopped here (not an ``Exception``: nothing catches it)."""


@dataclass
class CrashingStorage(MemoryStorage):
    """Killed just before its ``kill_at``-th write (1 is the claim): a process killed at that boundary.
    ``calls`` hears which step wrote (the objects: ``publish``, the day's feed: ``keep``)."""

    kill_at: int | None = None
    puts: int = 0
    calls: list[str] = field(default_factory=list)

    def put(self, key: str, body: bytes, **kwargs) -> Written:  # type: ignore[override]
        self.puts += 1
        call = "publish" if key in PLANNED else "keep" if key == DAILY_FEED else None
        if call and call not in self.calls[-1:]:
            self.calls.append(call)
        if self.puts == self.kill_at:
            raise Killed(key)
        return super().put(key, body, **kwargs)


@dataclass
class Heard:
    """A resource that tells ``calls`` it was called, and can be killed there."""

    calls: list[str]
    name: str
    then: Callable[..., Any]
    kill_before: bool = False
    kill_after: bool = False

    def __call__(self, *args: Any) -> Any:
        self.calls.append(self.name)
        if self.kill_before:
            raise Killed(self.name)
        answer = self.then(*args)
        if self.kill_after:
            raise Killed(f"after {self.name}")
        return answer


@dataclass
class Cdn:
    invalidate: Heard


@dataclass
class Topic:
    publish: Heard


@dataclass
class Social:
    """As ``social_posts``: each channel keeps its own state per update, so a second call posts nothing."""

    post: Heard
    enabled: bool = True


@dataclass
class World:
    """One bucket, CDN and topic, as the runs of one deployment share them."""

    storage: MemoryStorage = field(default_factory=CrashingStorage)
    cdn: MemoryCdn = field(default_factory=MemoryCdn)
    topic: MemoryTopic = field(default_factory=MemoryTopic)
    operators: MemoryTopic = field(default_factory=MemoryTopic)
    posts: list[list[dict]] = field(default_factory=list)
    """What reached the social channels: the changes of each post."""
    kill_in_cdn: bool = False
    kill_after_sns: bool = False

    def __post_init__(self) -> None:
        for key, body in {**SEEDED, RAW_KEY: RAW}.items():
            self.storage.put(key, body, content_type="text/csv", tags=TAGS)
        if isinstance(self.storage, CrashingStorage):
            self.storage.puts = 0

    @property
    def calls(self) -> list[str]:
        return self.storage.calls if isinstance(self.storage, CrashingStorage) else self._calls

    @calls.setter
    def calls(self, value: list[str]) -> None:
        self.calls[:] = value

    _calls: list[str] = field(default_factory=list)

    def resources(self) -> Resources:
        """The run's resources over this world, each call heard (and killed where the test says)."""
        calls = self.calls
        return Resources(
            bucket=self.storage,
            cdn=Cdn(Heard(calls, "invalidate", self.cdn.invalidate, kill_before=self.kill_in_cdn)),
            subscribers=Topic(Heard(calls, "notify", self.topic.publish, kill_after=self.kill_after_sns)),
            operators=Topic(Heard(calls, "tell", self.operators.publish)),
            social=Social(Heard(calls, "post", self._post)),
            heartbeat=MemoryHeartbeat(),
        )

    def _post(self, changes: pd.DataFrame | None, as_of: date) -> list[str]:
        records = changes.to_dict("records") if changes is not None else []
        if records in self.posts:
            return []
        self.posts.append(records)
        return [f"[social] x: posted {len(self.posts)}"]

    def planned_writes(self, _entry: Entry | None = None) -> list[PlannedWrite]:
        """What a run computes from the payload: the same bytes every time, planned over what is there now."""
        current = {k: (found.etag if (found := self.storage.get(k)) else None) for k in PLANNED}
        return plan_writes(PLANNED, current)

    def body(self, key: str) -> bytes:
        found = self.storage.get(key)
        assert isinstance(found, StoredObject)
        return found.body

    def ledger(self) -> Ledger:
        return ledger_store.read(self.storage)[0]


def claimed_entry(writes: list[PlannedWrite], message: str | None = MESSAGE, follow_ups: bool = False) -> Entry:
    entry = make_entry(ENTRY_ID, changes=[{"School": "ADDAMS", "CPS_School_ID": "609772", "new_cases": 1}])
    if not follow_ups:
        return entry.planned(writes, SUBJECT if message else None, message)
    return entry.planned(
        writes, SUBJECT if message else None, message, notice=NOTICE, daily_feed=DAILY_FEED, posts=message is not None
    )


def new_run(world: World, message: str | None = MESSAGE, follow_ups: bool = False) -> publication.Finished | None:
    """A run as the flow makes one: resume an unfinished update, else (unless applied) claim and finish."""
    ledger, etag = ledger_store.read(world.storage)
    resources = world.resources()
    if (unfinished := ledger.unfinished()) is not None and etag is not None:
        return publication.resume(ledger, etag, unfinished, world.planned_writes, TAGS, resources)
    if ledger.applied("aa", "2021-09-23") is not None:
        return None
    writes = world.planned_writes()
    ledger, etag = publication.claim(world.storage, ledger, etag, claimed_entry(writes, message, follow_ups))
    return publication.finish(ledger, etag, ENTRY_ID, writes, TAGS, resources)


def assert_published_once_and_notified_at_most_once(world: World, end: str = "notified") -> None:
    for key, (body, _) in PLANNED.items():
        assert world.body(key) == body
        written = [v for v in world.storage.versions[key] if v.body == body]
        assert len(written) == 1, f"{key} written {len(written)} times"
    (done,) = world.ledger().entries
    assert done.step == end and done.finished and len(world.topic.sent) <= 1
    assert set(world.cdn.by_reference) == {done.id} and done.invalidation_id == "I1"


# The ledger's writes: every claim, checkpoint and release conditional on the ETag read


def test_a_full_run_writes_each_object_once_invalidates_once_and_notifies_once() -> None:
    world = World()
    finished = new_run(world)
    assert finished is not None and [w.key for w in finished.written] == list(PLANNED)
    assert (finished.invalidation_id, finished.message_id, finished.warnings) == ("I1", "M1", [])
    assert_published_once_and_notified_at_most_once(world)
    assert world.topic.sent == [(SUBJECT, MESSAGE)]
    # claim, published, invalidated, notifying, notified: five versions of the ledger
    assert len(world.storage.versions[LEDGER_KEY]) == 5
    assert new_run(world) is None and world.topic.sent == [(SUBJECT, MESSAGE)]  # applied: nothing again


def test_the_second_of_two_runs_that_read_the_same_ledger_cannot_claim() -> None:
    world = World()
    ledger, etag = ledger_store.read(world.storage)
    publication.claim(world.storage, ledger, etag, make_entry("first"))
    with pytest.raises(UpdateClaimedElsewhere):
        publication.claim(world.storage, ledger, etag, make_entry("second"))
    assert [e.id for e in world.ledger().entries] == ["first"]


def test_a_checkpoint_after_another_run_wrote_the_ledger_is_refused() -> None:
    world = World()
    ledger, etag = publication.claim(world.storage, Ledger(), None, make_entry("a"))
    ledger_store.write(world.storage, ledger.advanced("a", "published"), etag)  # someone else moved it on
    with pytest.raises(UpdateClaimedElsewhere):
        publication.checkpoint(world.storage, ledger, etag, "a", "published")
    with pytest.raises(UpdateClaimedElsewhere):
        publication.release(world.storage, ledger, etag, "a")


def test_a_refused_first_write_releases_the_claim_and_writes_nothing() -> None:
    world = World()
    writes = world.planned_writes()
    world.storage.put(SCHOOLS_KEY, b"someone else's\n", content_type="text/csv", tags=TAGS, if_match=writes[0].if_match)
    ledger, etag = publication.claim(world.storage, Ledger(), None, claimed_entry(writes))
    with pytest.raises(NothingWritten):
        publication.finish(ledger, etag, ledger.entries[0].id, writes, TAGS, world.resources())
    assert world.ledger().entries == [] and world.body(TOTALS_KEY) == SEEDED[TOTALS_KEY]
    assert world.cdn.calls == 0 and world.topic.sent == []


def test_a_refused_later_write_stops_at_claimed_and_overwrites_nothing() -> None:
    world = World()
    writes = world.planned_writes()
    world.storage.put(TOTALS_KEY, b"someone else's\n", content_type="text/csv", tags=TAGS, if_match=writes[1].if_match)
    ledger, etag = publication.claim(world.storage, Ledger(), None, claimed_entry(writes))
    with pytest.raises(ConcurrentWriteError) as raised:
        publication.finish(ledger, etag, ledger.entries[0].id, writes, TAGS, world.resources())
    assert isinstance(raised.value, PartlyWritten)
    assert [w.key for w in raised.value.written] == [SCHOOLS_KEY]  # what was written before, for the caller to report
    assert world.body(TOTALS_KEY) == b"someone else's\n" and world.ledger().entries[0].step == "claimed"


# Resuming an entry stopped after each step: exactly the remaining steps


@pytest.mark.parametrize(
    ("stopped_at", "remaining"),
    [
        ("claimed", ["publish", "invalidate", "notify"]),
        ("published", ["invalidate", "notify"]),
        ("invalidated", ["notify"]),
        ("notifying", []),
    ],
)
def test_resuming_an_entry_does_exactly_its_remaining_steps(stopped_at: str, remaining: list[str]) -> None:
    world = World()
    writes = world.planned_writes()
    entry = claimed_entry(writes)
    if stopped_at != "claimed":  # what the run did before it stopped
        publication.publish_writes(world.storage, writes, TAGS)
    told = {}
    if stopped_at in ("invalidated", "notifying"):
        told["invalidation_id"] = world.cdn.invalidate(entry.paths, entry.id)
    ledger = Ledger([entry]).advanced(entry.id, stopped_at, **told)  # type: ignore[arg-type]
    ledger_store.write(world.storage, ledger, None)
    world.calls.clear()

    finished = new_run(world)

    assert world.calls == remaining
    assert_published_once_and_notified_at_most_once(world)
    if stopped_at == "notifying":  # it may or may not have gone out: never sent twice, and said so
        assert world.topic.sent == [] and "may not have reached subscribers" in finished.warnings[0]
    else:
        assert world.topic.sent == [(SUBJECT, MESSAGE)] and finished.warnings == []


def test_an_update_with_nothing_to_mail_goes_from_invalidated_to_notified() -> None:
    world = World()
    new_run(world, message=None)
    assert world.calls == ["publish", "invalidate"] and world.topic.sent == []
    assert world.ledger().entries[0].step == "notified"


# A run killed at every boundary, then the next run


BOUNDARIES = {  # n-th write of a run killed before it happens: what it had done
    1: "the claim (nothing done)",
    2: "the per-school table (claimed)",
    3: "CPStotals.csv (one object written)",
    4: "newFormatTest.csv (two written)",
    5: "the page (three written)",
    6: "recording published (all written)",
    7: "recording invalidated (CDN told)",
    8: "recording notifying",
    9: "recording notified (message sent)",
}


def killed_then_run_again(kill_at: int, follow_ups: bool = False) -> World:
    """A run killed before its ``kill_at``-th write, then the next run, on one world."""
    world = World()
    world.storage.kill_at = kill_at  # type: ignore[attr-defined]
    with pytest.raises(Killed):
        new_run(world, follow_ups=follow_ups)
    world.storage.kill_at = None  # type: ignore[attr-defined]
    new_run(world, follow_ups=follow_ups)
    return world


@pytest.mark.parametrize("kill_at", list(BOUNDARIES), ids=list(BOUNDARIES.values()))
def test_a_run_killed_before_any_write_is_finished_by_the_next_run(kill_at: int) -> None:
    world = killed_then_run_again(kill_at)

    assert_published_once_and_notified_at_most_once(world)
    assert world.topic.sent == [(SUBJECT, MESSAGE)]  # killed before notifying was recorded: sent by the next run


def test_a_run_killed_in_the_cdn_call_is_finished_by_the_next_run() -> None:
    world = World(kill_in_cdn=True)
    with pytest.raises(Killed):
        new_run(world)
    assert world.ledger().entries[0].step == "published"
    world.kill_in_cdn, world.calls = False, []

    new_run(world)

    assert world.calls == ["invalidate", "notify"]
    assert_published_once_and_notified_at_most_once(world)


def test_a_run_killed_after_sns_accepted_the_message_never_sends_it_again() -> None:
    world = World(kill_after_sns=True)
    with pytest.raises(Killed):
        new_run(world)
    assert world.ledger().entries[0].step == "notifying" and len(world.topic.sent) == 1
    world.kill_after_sns = False

    finished = new_run(world)

    assert world.topic.sent == [(SUBJECT, MESSAGE)]
    assert "never twice" in finished.warnings[0]
    assert_published_once_and_notified_at_most_once(world)


def test_an_sns_refusal_leaves_the_entry_at_invalidated_and_the_next_run_sends_it_once() -> None:
    world = World()
    world.topic.refuse = True
    with pytest.raises(AwsCallFailed):
        new_run(world)
    assert world.ledger().entries[0].step == "invalidated" and world.topic.sent == []
    world.topic.refuse, world.calls = False, []

    finished = new_run(world)

    assert world.calls == ["notify"] and finished.message_id == "M1"
    assert world.topic.sent == [(SUBJECT, MESSAGE)]
    assert_published_once_and_notified_at_most_once(world)


def test_finish_leaves_the_ledger_it_was_given_as_it_was() -> None:
    world = World()
    writes = world.planned_writes()
    ledger, etag = publication.claim(world.storage, Ledger(), None, claimed_entry(writes))
    before = ledger.dumps()
    finished = publication.finish(ledger, etag, ledger.entries[0].id, writes, TAGS, world.resources())
    assert ledger.dumps() == before and ledger.entries[0].step == "claimed"
    assert finished.ledger.entries[0].step == "notified" and finished.etag == world.storage.get(LEDGER_KEY).etag


def test_objects_are_tagged_with_their_day_and_payload() -> None:
    assert publication.object_tags(make_entry("a", sha256="ab" * 32), TAGS) == {
        "lifecycle": "true",
        "as-of": "2021-09-23",
        "source-sha256": "ab" * 8,
    }


# The follow-ups (operators' season notice, the day's raw feed, the social posts): steps of the publication


def assert_followed_up_exactly_once(world: World) -> None:
    assert_published_once_and_notified_at_most_once(world, end="posted")
    assert world.body(DAILY_FEED) == RAW and len(world.storage.versions[DAILY_FEED]) == 1
    assert len(world.operators.sent) <= 1 and len(world.posts) == 1


def test_a_full_run_with_follow_ups_tells_keeps_and_posts_once_each() -> None:
    world = World()
    finished = new_run(world, follow_ups=True)
    assert world.calls == ["publish", "invalidate", "notify", "tell", "keep", "post"]
    assert world.operators.sent == [NOTICE] and world.topic.sent == [(SUBJECT, MESSAGE)]
    assert finished is not None and finished.notes == [
        f"operators told on the alarm topic (message M1): {NOTICE[0]}",
        f"kept the day's raw feed as {DAILY_FEED}",
        "[social] x: posted 1",
    ]
    assert_followed_up_exactly_once(world)
    # claim, published, invalidated, notifying, notified, telling, told, kept, posted
    assert len(world.storage.versions[LEDGER_KEY]) == 9
    assert new_run(world, follow_ups=True) is None and world.calls.count("post") == 1  # applied: nothing again


def test_an_entry_written_before_the_follow_ups_were_steps_ends_at_notified() -> None:
    old = make_entry("old", step="notified")
    assert old.finished and publication.next_step(old) is None and Ledger([old]).unfinished() is None


@pytest.mark.parametrize(
    ("stopped_at", "remaining"),
    [
        ("notified", ["tell", "keep", "post"]),
        ("telling", ["keep", "post"]),
        ("told", ["keep", "post"]),
        ("kept", ["post"]),
    ],
)
def test_resuming_after_the_mail_does_exactly_the_remaining_follow_ups(stopped_at: str, remaining: list[str]) -> None:
    world = World()
    writes = world.planned_writes()
    publication.publish_writes(world.storage, writes, TAGS)
    entry = claimed_entry(writes, follow_ups=True)
    if stopped_at == "kept":
        publication.keep_feed(world.storage, entry, TAGS)
    ledger = Ledger([entry]).advanced(entry.id, stopped_at, invalidation_id=world.cdn.invalidate(entry.paths, entry.id))  # type: ignore[arg-type]
    ledger_store.write(world.storage, ledger, None)
    world.calls.clear()

    finished = new_run(world, follow_ups=True)

    assert world.calls == remaining
    assert world.topic.sent == []  # the subscribers' mail was the earlier run's
    assert_followed_up_exactly_once(world)
    if stopped_at == "telling":  # it may or may not have reached the operators: never twice, and said so
        assert world.operators.sent == [] and "never twice" in finished.warnings[0]
    elif stopped_at == "notified":
        assert world.operators.sent == [NOTICE]


FOLLOW_UP_BOUNDARIES = {  # n-th write of a run with follow-ups killed before it happens
    9: "recording notified (message sent)",
    10: "recording telling",
    11: "recording told (operators told)",
    12: "the day's raw feed copy",
    13: "recording kept (feed kept)",
    14: "recording posted (posted)",
}


@pytest.mark.parametrize("kill_at", list(FOLLOW_UP_BOUNDARIES), ids=list(FOLLOW_UP_BOUNDARIES.values()))
def test_a_run_killed_before_a_follow_up_is_finished_by_the_next_run_once(kill_at: int) -> None:
    world = killed_then_run_again(kill_at, follow_ups=True)

    assert_followed_up_exactly_once(world)
    assert world.topic.sent == [(SUBJECT, MESSAGE)] and world.operators.sent == [NOTICE]


def test_an_sns_refusal_of_the_notice_leaves_the_entry_at_notified_and_the_next_run_tells_once() -> None:
    world = World()
    world.operators.refuse = True
    with pytest.raises(AwsCallFailed):
        new_run(world, follow_ups=True)
    assert world.ledger().entries[0].step == "notified" and world.operators.sent == []
    world.operators.refuse, world.calls = False, []

    new_run(world, follow_ups=True)

    assert world.calls == ["tell", "keep", "post"] and world.operators.sent == [NOTICE]
    assert_followed_up_exactly_once(world)


def test_the_raw_feed_copy_is_read_back_from_the_archive_and_not_rewritten_when_it_holds_those_bytes() -> None:
    world = World()
    entry = claimed_entry(world.planned_writes(), follow_ups=True)
    assert publication.keep_feed(world.storage, entry, TAGS) == DAILY_FEED
    assert publication.keep_feed(world.storage, entry, TAGS) is None
    assert len(world.storage.versions[DAILY_FEED]) == 1
