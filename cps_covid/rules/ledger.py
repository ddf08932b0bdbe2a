"""The ledger: which payload each run applied, and how far its publication got (pure).

Kept as one JSON object in the bucket (``state/ledger.json``) and written with
conditional writes, it is at once the record of applied payloads (for rebuilds
and idempotent reruns), the lease that lets exactly one run publish at a time,
and the checkpoint a run killed half-way is resumed from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Literal

from cps_covid.rules.labels import arrival_time
from cps_covid.rules.publish_plan import PlannedWrite, invalidation_paths, md5

LEDGER_KEY = "state/ledger.json"
Step = Literal["claimed", "published", "invalidated", "notifying", "notified", "telling", "told", "kept", "posted"]
"""How far an entry got; the last of ``Entry.steps`` is the end (``notified`` for an entry with no follow-up).

``notifying`` and ``telling`` are recorded before their SNS call: a run stopped
there may or may not have sent it, and the next run does not send it again
(never twice).
"""


@dataclass
class Entry:
    id: str
    flow_run: str
    as_of: str
    raw_key: str
    sha256: str
    source: str
    fetched_at: str
    claimed_at: str
    lease_until: str
    step: Step = "claimed"
    new_season: str | None = None
    ignore_ids: list[str] = field(default_factory=list)
    profiles: list[dict] = field(default_factory=list)
    objects: dict[str, str] = field(default_factory=dict)
    """Key -> MD5 of the bytes this entry publishes."""
    paths: list[str] = field(default_factory=list)
    subject: str | None = None
    message: str | None = None
    changes: list[dict] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)
    invalidation_id: str | None = None
    message_id: str | None = None
    rolled_back: bool = False
    """Undone by ``cps-covid rollback``: its payload may be applied again."""
    notice: list[str] | None = None
    """The operators' notice (subject, body) when the season calendar closed a season in this update."""
    daily_feed: str | None = None
    """Where the day's raw feed is kept (``data/daily-json/<day>.json``), copied from ``raw_key``."""
    posts: bool = False
    """Whether the update is posted to the enabled social channels."""
    errata: list[dict] = field(default_factory=list)
    """The corrections, drift repairs and migrations this update made (``errata.errata_records``): the open
    dataset's errata table is these, entry by entry."""

    @classmethod
    def claiming(
        cls,
        *,
        as_of: date,
        now: datetime,
        flow_run: str,
        raw_key: str,
        sha256: str,
        source: str,
        fetched_at: datetime,
        lease_seconds: float,
        new_season: str | None,
        ignore_ids: frozenset[str],
        profiles: list[dict],
        changes: list[dict],
        errata: list[dict] | None = None,
    ) -> Entry:
        """The entry a run claims for one payload applied to one day, before it knows what it writes."""
        return cls(
            id=f"{as_of.isoformat()}-{now:%H%M%S}-{sha256[:8]}",
            flow_run=flow_run,
            as_of=as_of.isoformat(),
            raw_key=raw_key,
            sha256=sha256,
            source=source,
            fetched_at=fetched_at.isoformat(),
            claimed_at=now.isoformat(),
            lease_until=lease(now, lease_seconds),
            new_season=new_season,
            ignore_ids=sorted(ignore_ids),
            profiles=profiles,
            changes=changes,
            errata=errata or [],
        )

    def planned(
        self,
        writes: list[PlannedWrite],
        subject: str | None,
        message: str | None,
        *,
        notice: tuple[str, str] | None = None,
        daily_feed: str | None = None,
        posts: bool = False,
    ) -> Entry:
        """This entry with what it publishes: each object's MD5, the CDN paths, the notification, and the
        follow-ups after it (the operators' notice, the day's raw feed copy, the social posts)."""
        return replace(
            self,
            objects={w.key: md5(w.body) for w in writes},
            paths=invalidation_paths(writes),
            subject=subject,
            message=message,
            notice=list(notice) if notice else None,
            daily_feed=daily_feed,
            posts=posts,
        )

    @property
    def steps(self) -> list[Step]:
        """This entry's steps in order: the publication, then each follow-up it planned.

        An entry written before the follow-ups were steps has none of them: ``notified`` is its end.
        """
        steps: list[Step] = ["claimed", "published", "invalidated"]
        steps += ["notifying", "notified"] if self.message else ["notified"]
        steps += ["telling", "told"] if self.notice else []
        steps += ["kept"] if self.daily_feed else []
        steps += ["posted"] if self.posts else []
        return steps

    @property
    def finished(self) -> bool:
        return next_step(self) is None

    def lease_expired(self, now: datetime, lease_seconds: float) -> bool:
        """Whether the claiming run is presumed dead; the reading run's lease length decides
        (an operator can set it to 0 to resume at once)."""
        return datetime.fromisoformat(self.claimed_at) + timedelta(seconds=lease_seconds) <= now


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def parse(cls, body: bytes | None) -> Ledger:
        if not body:
            return cls()
        data = json.loads(body)
        return cls([Entry(**e) for e in data.get("entries", [])])

    def dumps(self) -> bytes:
        return (json.dumps({"entries": [asdict(e) for e in self.entries]}, indent=1, sort_keys=True) + "\n").encode()

    def unfinished(self) -> Entry | None:
        return next((e for e in reversed(self.entries) if not e.finished), None)

    def applied(self, sha256: str, as_of: str) -> Entry | None:
        """The finished entry that already applied this very payload for this day, if any."""
        return next((e for e in self.in_effect() if e.sha256 == sha256 and e.as_of == as_of), None)

    def in_effect(self, before: str | None = None) -> list[Entry]:
        """The finished updates not rolled back, in order; with ``before``, those ahead of that entry only."""
        ahead = self.entries
        if before is not None:
            ahead = next((self.entries[:at] for at, e in enumerate(self.entries) if e.id == before), self.entries)
        return [e for e in ahead if e.finished and not e.rolled_back]

    def arrivals(self, as_of: str, extra: Entry | None = None) -> dict[str, list[tuple[str, int]]]:
        """School id -> (time, cases) of each update of the day: when its cases arrived.

        ``extra``: an update not in the ledger yet (the one being claimed), counted last.
        """
        out: dict[str, list[tuple[str, int]]] = {}
        for entry in [*self.entries, *([extra] if extra else [])]:
            if entry.as_of != as_of:
                continue
            when = arrival_time(date.fromisoformat(as_of), datetime.fromisoformat(entry.claimed_at))
            for change in entry.changes:
                out.setdefault(str(change["CPS_School_ID"]), []).append((when, int(change["new_cases"])))
        return out

    def get(self, entry_id: str) -> Entry:
        return next(e for e in self.entries if e.id == entry_id)

    def with_entry(self, entry: Entry) -> Ledger:
        """This ledger with ``entry`` claimed (appended); this one is unchanged."""
        return Ledger([*self.entries, entry])

    def advanced(self, entry_id: str, step: Step, **fields: object) -> Ledger:
        """This ledger with the entry at ``step`` and ``fields`` recorded; this one is unchanged."""
        return Ledger([replace(e, step=step, **fields) if e.id == entry_id else e for e in self.entries])  # type: ignore[arg-type]

    def rolled_back_after(self, moment: datetime) -> Ledger:
        """This ledger with every update claimed after ``moment`` marked rolled back; this one is unchanged."""
        return Ledger(
            [replace(e, rolled_back=True) if datetime.fromisoformat(e.claimed_at) > moment else e for e in self.entries]
        )

    def without(self, entry_id: str) -> Ledger:
        """This ledger without the entry (a claim that wrote nothing); this one is unchanged."""
        return Ledger([e for e in self.entries if e.id != entry_id])


def next_step(entry: Entry) -> Step | None:
    """The step a claimed update takes next; ``None`` once it is finished.

    claimed -> published (objects written) -> invalidated (CDN told) -> notifying
    (recorded before the SNS call) -> notified, then the follow-ups it planned:
    telling (recorded before the operators' notice) -> told -> kept (the day's
    raw feed copied) -> posted (social channels). An update with nothing to mail
    goes from invalidated to notified. A run that finds an entry at notifying or
    telling cannot know whether the message went out: it moves on without sending.
    """
    steps = entry.steps
    at = steps.index(entry.step)
    return steps[at + 1] if at + 1 < len(steps) else None


def lease(now: datetime, seconds: float) -> str:
    return (now + timedelta(seconds=seconds)).isoformat()
