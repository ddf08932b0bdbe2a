"""Social summary posts after an update is published: X and a Facebook page, both off by default.

Each channel keeps its own state in the bucket (``social.state_key``), keyed by the
published page's ETag, so an update is posted once per channel whichever run gets
there, and a post the API refused is retried by the next run. A channel that fails
never fails the data update: ``post`` catches everything and returns notes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from cps_covid.errors import ConcurrentWriteError
from cps_covid.rules import social
from cps_covid.rules.publish_plan import PAGE_KEY
from cps_covid.systems import facebook, x_api
from cps_covid.systems.prefect_secrets import secret
from cps_covid.systems.storage import Storage

if TYPE_CHECKING:
    import pandas as pd

    from cps_covid.settings import Settings

STATE_TYPE = "application/json"


class ConfiguredChannels:
    """The channels the settings enable, their state in ``bucket``: a ``resources.SocialChannels``."""

    def __init__(self, bucket: Storage, settings: Settings) -> None:
        self.bucket, self.settings = bucket, settings
        flags = {"x": settings.social_x_enabled, "facebook": settings.social_facebook_enabled}
        self.channels = [c for c in social.CHANNELS if flags[c]]

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    def post(self, changes: pd.DataFrame | None, as_of: date) -> list[str]:
        text = social.post_text(changes, as_of, self.settings.site_url) if changes is not None else None
        try:
            update = self.bucket.etag(PAGE_KEY)
        except Exception as err:  # the update is published already: nothing here may fail it
            return [f"[social] cannot read {PAGE_KEY} ({err}); retried next run"]
        notes = []
        for channel in self.channels:
            try:
                note = self.post_channel(channel, update, text)
            except Exception as err:
                note = f"[social] {channel}: {type(err).__name__}: {err}; retried next run"
            if note:
                notes.append(note)
        return notes

    def send(self, channel: str, text: str) -> str:
        """One post on one channel; returns its id."""
        settings = self.settings
        if channel == "x":
            keys = x_api.Credentials.from_secret(secret(settings.x_secret_block), settings.x_secret_block)
            return x_api.post(settings.x_api_url, text, keys, timeout=settings.social_timeout_seconds)
        block = settings.facebook_secret_block
        credentials = facebook.Credentials.from_secret(secret(block), block)
        link = f"{settings.site_url.rstrip('/')}/newcases.html"
        return facebook.post(
            settings.facebook_graph_url,
            settings.facebook_page_id,
            text,
            link,
            credentials,
            timeout=settings.social_timeout_seconds,
        )

    def _save(self, key: str, state: social.ChannelState, etag: str | None) -> str:
        return self.bucket.put(
            key, state.dumps(), content_type=STATE_TYPE, tags={"lifecycle": "state"}, if_match=etag
        ).etag

    def post_channel(self, channel: str, update: str | None, text: str | None) -> str:
        """Plan, mark ``posting``, post, record the outcome; returns a note for the run summary ("" if nothing)."""
        key = social.state_key(channel)
        stored = self.bucket.get(key)
        state = social.ChannelState.parse(stored.body) if stored else None
        etag = stored.etag if stored else None
        plan = social.plan(state, update, text)
        planned = plan.state  # set for "post" and "interrupted"
        if plan.action == "nothing" or planned is None:
            return ""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if plan.action == "interrupted":
            self._save(key, planned.failed(social.PostFailed(plan.reason, uncertain=True), now), etag)
            return f"[social] {channel}: {plan.reason}"
        try:
            etag = self._save(key, planned.attempted(now), etag)
        except ConcurrentWriteError:
            return f"[social] {channel}: another run is posting this update"
        try:
            post_id = self.send(channel, planned.text)
        except social.PostFailed as err:
            self._save(key, planned.attempted(now).failed(err, now), etag)
            then = "not resent: check the account" if err.uncertain else "retried next run"
            return f"[social] {channel}: post failed ({err}); {then}"
        self._save(key, planned.attempted(now).posted(post_id, now), etag)
        return f"[social] {channel}: posted {post_id} ({plan.reason})"
