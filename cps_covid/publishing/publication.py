"""The publication of a claimed update, as a state machine (see docs/crash-safety.md).

Which step comes next is one pure function, ``ledger.next_step``; each change
of the ledger is a pure transition returning a new ``Ledger``. ``finish`` is
the one driver: it does each step's side effect on the run's ``Resources``
(the bucket, the CDN, the topics, the social channels), then records the step
with a conditional write. The flow hands it the configured resources, the unit
tests the in-memory ones, so every crash boundary is tested in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from cps_covid.errors import AwsCallFailed, ConcurrentWriteError
from cps_covid.publishing import ledger_store
from cps_covid.publishing.resources import Resources, Topic
from cps_covid.rules.archive import daily_feed_type
from cps_covid.rules.ledger import Entry, Ledger, Step, next_step
from cps_covid.rules.publish_plan import PlannedWrite, Written, same_content
from cps_covid.systems.storage import Storage


class NothingWritten(ConcurrentWriteError):
    """The first conditional write was refused: this run published nothing."""


class PartlyWritten(ConcurrentWriteError):
    """A later conditional write was refused: ``written`` holds the objects written before it."""

    def __init__(self, message: str, written: list[Written]) -> None:
        super().__init__(message)
        self.written = written


@dataclass
class Finished:
    """Where ``finish`` left the ledger, and what it did."""

    ledger: Ledger
    etag: str
    written: list[Written] = field(default_factory=list)
    invalidation_id: str | None = None
    message_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the follow-ups did (the operators told, the raw feed kept, the posts), for the run summary."""


def publish_writes(storage: Storage, writes: list[PlannedWrite], tags: dict[str, str]) -> list[Written]:
    """Each object with its condition, in the planned order: ``NothingWritten`` when the first write is refused,
    ``PartlyWritten`` (with what was written) when a later one is."""
    written: list[Written] = []
    for write in writes:
        try:
            written.append(
                storage.put(write.key, write.body, content_type=write.content_type, tags=tags, if_match=write.if_match)
            )
        except ConcurrentWriteError as err:
            if not written:
                raise NothingWritten(str(err)) from None
            raise PartlyWritten(str(err), written) from None
    return written


def claim(storage: Storage, ledger: Ledger, etag: str | None, entry: Entry) -> tuple[Ledger, str]:
    """The ledger with ``entry`` in it, written over ``etag`` (``UpdateClaimedElsewhere`` if another run wrote)."""
    claimed = ledger.with_entry(entry)
    return claimed, ledger_store.write(storage, claimed, etag)


def checkpoint(
    storage: Storage, ledger: Ledger, etag: str, entry_id: str, step: Step, **fields: Any
) -> tuple[Ledger, str]:
    advanced = ledger.advanced(entry_id, step, **fields)
    return advanced, ledger_store.write(storage, advanced, etag)


def release(storage: Storage, ledger: Ledger, etag: str, entry_id: str) -> tuple[Ledger, str]:
    released = ledger.without(entry_id)
    return released, ledger_store.write(storage, released, etag)


def keep_feed(storage: Storage, entry: Entry, tags: dict[str, str]) -> str | None:
    """The entry's archived raw payload as the day's feed (``entry.daily_feed``), unless it holds those bytes.

    Read back from the raw archive, so a run that resumes the step writes exactly what the first run would
    have; conditional on the ETag it saw, so two runs never interleave.
    """
    if not entry.daily_feed:
        return None
    raw = storage.get(entry.raw_key)
    if raw is None:
        raise FileNotFoundError(f"{entry.raw_key}: the archived payload of update {entry.id} is missing")
    current = storage.etag(entry.daily_feed)
    if same_content(raw.body, current):
        return None
    storage.put(entry.daily_feed, raw.body, content_type=daily_feed_type(entry.daily_feed), tags=tags, if_match=current)
    return entry.daily_feed


def object_tags(entry: Entry, base: Mapping[str, str]) -> dict[str, str]:
    """The tags of every object an update writes: the configured ones, its day and its payload."""
    return dict(base) | {"as-of": entry.as_of, "source-sha256": entry.sha256[:16]}


def not_sent_warning(entry: Entry) -> str:
    return (
        f"update {entry.id} stopped while sending its notification: it may not have reached subscribers, "
        "and it is not sent again (never twice)"
    )


def not_told_warning(entry: Entry) -> str:
    return (
        f"update {entry.id} stopped while telling the operators that the season closed "
        f"({(entry.notice or [''])[0]}): it may not have reached them, and it is not sent again (never twice)"
    )


def finish(
    ledger: Ledger,
    etag: str,
    entry_id: str,
    writes: list[PlannedWrite],
    base_tags: Mapping[str, str],
    resources: Resources,
    log: Callable[[str], None] = lambda line: None,
) -> Finished:
    """Take a claimed update through its remaining steps (``next_step``), recording each once it is done.

    ``writes``: the objects still to write (only read at ``claimed``). A refused first write releases
    the claim; an SNS call that fails outright goes back a step so the next run sends it; an entry found
    at ``notifying`` or ``telling`` moves on without sending (never twice). The follow-ups (the operators'
    notice, the day's raw feed, the social posts) are steps like the others: a run that dies before one
    leaves it to the next run, which does it once. ``log`` hears each step as it is done.
    """
    bucket, done = resources.bucket, Finished(ledger, etag)
    while (step := next_step(entry := ledger.get(entry_id))) is not None:
        fields: dict[str, Any] = {}
        if step == "published":
            try:
                done.written = publish_writes(bucket, writes, object_tags(entry, base_tags))
            except NothingWritten:
                release(bucket, ledger, etag, entry_id)
                raise
            for written in done.written:
                log(f"wrote {written.key} version {written.version_id}")
            fields["versions"] = entry.versions | {w.key: w.version_id for w in done.written}
        elif step == "invalidated":
            done.invalidation_id = fields["invalidation_id"] = resources.cdn.invalidate(entry.paths, entry.id)
            log(f"invalidation {done.invalidation_id} for {', '.join(entry.paths)}")
        elif step in ("notifying", "telling"):  # recorded before the call: a run stopped after it never sends again
            before = entry.step
            ledger, etag = checkpoint(bucket, ledger, etag, entry_id, step)
            try:
                if step == "notifying":
                    done.message_id = resources.subscribers.publish(entry.subject or "", entry.message or "")
                    step, fields = "notified", {"message_id": done.message_id}
                    log(f"mailed the subscribers (message {done.message_id}): {entry.subject}")
                else:
                    subject, body = entry.notice or ("", "")
                    done.notes.append(tell(resources.operators, subject, body))
                    log(done.notes[-1])
                    step = "told"
            except AwsCallFailed:
                checkpoint(bucket, ledger, etag, entry_id, before)  # refused outright: the next run sends it
                raise
        elif entry.step == "notifying":  # notified, for a run that stopped while sending
            done.warnings.append(not_sent_warning(entry))
        elif entry.step == "telling":  # told, for a run that stopped while telling
            done.warnings.append(not_told_warning(entry))
        elif step == "kept":
            if kept := keep_feed(bucket, entry, object_tags(entry, base_tags)):
                done.notes.append(f"kept the day's raw feed as {kept}")
                log(done.notes[-1])
        elif step == "posted":
            posted = resources.social.post(pd.DataFrame(entry.changes), date.fromisoformat(entry.as_of))
            done.notes += posted
        ledger, etag = checkpoint(bucket, ledger, etag, entry_id, step, **fields)
    done.ledger, done.etag = ledger, etag
    return done


def tell(operators: Topic | None, subject: str, body: str) -> str:
    """A notice on the alarm topic that needs no answer (the season calendar closed a season): a note."""
    if operators is None:
        return f"operators not mailed (no alarm topic configured): {subject}"
    return f"operators told on the alarm topic (message {operators.publish(subject, body)}): {subject}"


def resume(
    ledger: Ledger,
    etag: str,
    entry: Entry,
    recompute: Callable[[Entry], list[PlannedWrite]],
    base_tags: Mapping[str, str],
    resources: Resources,
    log: Callable[[str], None] = lambda line: None,
) -> Finished:
    """Finish an update a crashed run left unfinished. Stopped at ``claimed``, its objects are recomputed
    (``recompute``: the same bytes it planned, or it refuses) and the ones still different are written."""
    writes = recompute(entry) if entry.step == "claimed" else []
    return finish(ledger, etag, entry.id, writes, base_tags, resources, log)
