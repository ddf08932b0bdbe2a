"""The feed watch's rule (pure): is what the source answers now a change an update should apply?

The watch polls every minute and must stay cheap, so it asks the source the
cheapest question it allows: a conditional GET with the validators the source
gave last time (``ETag``, ``Last-Modified``); a source without them sends its body,
whose sha256 stands in. A body the ledger shows applied is no change (the backstop
cron, or an earlier event, got there first). A change is signalled once, as one
Prefect event: the update's trigger runs the update, which reads the source itself.

The trigger drops events that arrive within its window after one it acted on
(Prefect's reactive trigger fires on the first and ignores the rest), so the watch
never signals a second change inside that window: it waits for the window to
pass and signals the latest body then, if the first run did not already apply it.
A burst of changes so makes one run, or two, never a lost one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from cps_covid.rules.ledger import Ledger

WATCH_KEY = "state/watch.json"
EVENT = "cps-covid.feed.changed"
RESOURCE_ID = "cps-covid.feed"
"""The event the watch emits and the resource it names (the update deployment's trigger matches both)."""


@dataclass(frozen=True)
class WatchState:
    """What the watch knows between polls (``state/watch.json``)."""

    source: str = ""
    etag: str = ""
    last_modified: str = ""
    sha256: str = ""
    """The body the source last sent, which its validators describe."""
    applied: str = ""
    """The last body the watch found in the ledger (no need to read the ledger again while it is served)."""
    signalled: str = ""
    signalled_at: str = ""
    """The last body signalled, and when."""

    @classmethod
    def parse(cls, body: bytes | None) -> WatchState:
        return cls(**json.loads(body)) if body else cls()

    def dumps(self) -> bytes:
        return (json.dumps(asdict(self), indent=1, sort_keys=True) + "\n").encode()

    def validators(self, source: str) -> dict[str, str]:
        """The conditional GET's headers: only for the source they came from, and only with a body they describe."""
        if source != self.source or not self.sha256:
            return {}
        headers = {"If-None-Match": self.etag} if self.etag else {}
        return headers | ({"If-Modified-Since": self.last_modified} if self.last_modified else {})

    def answered(self, source: str, *, not_modified: bool, sha256: str, etag: str, last_modified: str) -> WatchState:
        """The state after the source's answer: a 304 keeps the body known; a body replaces it and its validators."""
        if not_modified:
            return self
        return replace(self, source=source, etag=etag, last_modified=last_modified, sha256=sha256)

    @property
    def needs_ledger(self) -> bool:
        """Whether the body served is one the watch has not yet seen applied."""
        return self.sha256 != self.applied


@dataclass(frozen=True)
class Verdict:
    signal: bool
    state: WatchState
    reason: str


def was_applied(ledger: Ledger, sha256: str) -> bool:
    """Whether a finished update in effect applied this very body (for any day: a feed is cumulative)."""
    return any(e.sha256 == sha256 for e in ledger.in_effect())


def verdict(state: WatchState, applied: bool, now: datetime, window_seconds: float) -> Verdict:
    """Signal the body served, or say why not; the state to keep either way."""
    body = state.sha256[:12]
    if applied:
        return Verdict(False, replace(state, applied=state.sha256), f"no change: body {body} is applied")
    if state.sha256 == state.signalled:
        return Verdict(False, state, f"body {body} was signalled at {state.signalled_at}: its update is due")
    if state.signalled_at:
        window_ends = datetime.fromisoformat(state.signalled_at) + timedelta(seconds=window_seconds)
        if now < window_ends:
            return Verdict(False, state, f"changed to {body}; signalled after the trigger's window ({window_ends:%X})")
    return Verdict(True, replace(state, signalled=state.sha256, signalled_at=now.isoformat()), f"changed to {body}")
