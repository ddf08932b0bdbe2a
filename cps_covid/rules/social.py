"""Social summary posts (X, a Facebook page): the text and when to post it (pure).

One post per update, never two: an update is known by the ETag of the
``newcases.html`` it published, and each channel keeps a small state object
(``state/social/<channel>.json``). The state says ``posting`` before the post
is sent, so a run killed while sending is never followed by a second post (it
is reported instead); a post the API refused stays ``pending`` and the next run
retries it, unless a newer update replaced it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import date

import pandas as pd

from cps_covid.errors import CpsCovidError
from cps_covid.rules.labels import date_label
from cps_covid.rules.schema import SCHOOL

CHANNELS = ("x", "facebook")
STATE_PREFIX = "state/social/"
X_LIMIT = 280
X_URL_WEIGHT = 23
_URL = re.compile(r"https?://\S+")
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
"""Code points X counts once (its ``twitter-text`` v3 ranges); everything else counts twice."""


class PostFailed(CpsCovidError):
    """A channel did not take the post; ``uncertain``: it may have been published anyway (never retried)."""

    def __init__(self, message: str, *, uncertain: bool = False) -> None:
        super().__init__(message)
        self.uncertain = uncertain


def state_key(channel: str) -> str:
    return f"{STATE_PREFIX}{channel}.json"


def x_length(text: str) -> int:
    """The length X counts: a URL counts 23, CJK and emoji count 2."""
    weight, at = 0, 0
    for found in _URL.finditer(text):
        weight += _weight(text[at : found.start()]) + X_URL_WEIGHT
        at = found.end()
    return weight + _weight(text[at:])


def _weight(text: str) -> int:
    return sum(1 if any(low <= ord(c) <= high for low, high in _LIGHT) else 2 for c in text)


def post_text(changes: pd.DataFrame, day: date, site_url: str, limit: int = X_LIMIT) -> str | None:
    """The summary of one update, within X's limit: totals, then the schools with most cases, then the link.

    ``changes``: ``School`` and ``new_cases`` of the update. An update that only
    removed cases (corrections) is not worth a post: ``None``.
    """
    positive = changes[changes["new_cases"] > 0].sort_values(["new_cases", SCHOOL], ascending=[False, True])
    if positive.empty:
        return None
    cases, schools = int(positive["new_cases"].sum()), len(positive)
    head = (
        f"CPS COVID update, {date_label(day)}: {cases} new case{'' if cases == 1 else 's'} "
        f"at {schools} school{'' if schools == 1 else 's'}"
    )
    link = f"List: {site_url.rstrip('/')}/newcases.html"
    named = [f"{name} ({n})" for name, n in zip(positive[SCHOOL], positive["new_cases"], strict=True)]
    for shown in range(len(named), 0, -1):
        rest = len(named) - shown
        listing = ", ".join(named[:shown]) + (f" and {rest} more" if rest else "")
        text = f"{head}: {listing}.\n{link}"
        if x_length(text) <= limit:
            return text
    return f"{head}.\n{link}"


@dataclass(frozen=True)
class ChannelState:
    update: str
    """The ETag of the ``newcases.html`` the post is about."""
    status: str
    """``pending`` (to post), ``posting`` (being sent), ``posted``, ``uncertain`` (may be out: never resent)."""
    text: str
    attempts: int = 0
    post_id: str | None = None
    last_error: str | None = None
    updated_at: str = ""

    @classmethod
    def parse(cls, payload: bytes) -> ChannelState:
        try:
            values = json.loads(payload)
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise PostFailed(f"the channel's state object is unreadable ({err}): remove it to start over") from None

    def dumps(self) -> bytes:
        return (json.dumps(asdict(self), indent=1) + "\n").encode()

    def attempted(self, at: str) -> ChannelState:
        return replace(self, status="posting", attempts=self.attempts + 1, updated_at=at)

    def posted(self, post_id: str, at: str) -> ChannelState:
        return replace(self, status="posted", post_id=post_id, last_error=None, updated_at=at)

    def failed(self, error: PostFailed, at: str) -> ChannelState:
        return replace(self, status="uncertain" if error.uncertain else "pending", last_error=str(error), updated_at=at)


@dataclass(frozen=True)
class Plan:
    action: str
    """``post``, ``interrupted`` (a run stopped while sending: report, never resend) or ``nothing``."""
    state: ChannelState | None = None
    reason: str = ""


def plan(state: ChannelState | None, update: str | None, text: str | None) -> Plan:
    """What a run does on one channel, given its state, the published page's ETag and this run's text.

    ``text`` is ``None`` when this run published no new update: then only a
    pending post of the page still published is retried.
    """
    if update is None:
        return Plan("nothing", reason="no newcases.html is published")
    if state is not None and state.update == update:
        if state.status == "posting":
            return Plan("interrupted", state, "a run stopped while sending this post: it may be out, it is not resent")
        if state.status in ("posted", "uncertain"):
            return Plan("nothing", state, f"this update is {state.status} already")
        if state.status == "pending":
            return Plan("post", state, f"retrying (attempt {state.attempts + 1})")
    if text is not None:
        return Plan("post", ChannelState(update=update, status="pending", text=text), "new update")
    return Plan("nothing", state, "no new update and nothing pending")
