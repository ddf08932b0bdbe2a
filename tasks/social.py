"""Social summary posts after the update is published: X and a Facebook page, both off by default.

A channel that fails never fails the data update: the task catches everything,
reports it (the returned notes go to the run summary, and the ``social-posts``
artifact), and the next run retries a post the API refused. Credentials come
only from Prefect Secret blocks, loaded when a post is actually due.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import cast

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from cps_covid.errors import ConcurrentWriteError
from cps_covid.rules import pipeline, social
from cps_covid.settings import Settings
from cps_covid.systems import facebook, s3, x_api

STATE_TYPE = "application/json"


def enabled_channels(settings: Settings) -> list[str]:
    flags = {"x": settings.social_x_enabled, "facebook": settings.social_facebook_enabled}
    return [c for c in social.CHANNELS if flags[c]]


def _secret(block: str) -> object:
    from prefect.blocks.system import Secret

    try:
        return cast(Secret, Secret.load(block)).get()
    except ValueError as err:
        raise social.PostFailed(f"cannot load the Prefect Secret block {block!r} ({err})") from None


def send(channel: str, text: str, settings: Settings) -> str:
    """One post on one channel; returns its id."""
    if channel == "x":
        keys = x_api.Credentials.from_secret(_secret(settings.x_secret_block), settings.x_secret_block)
        return x_api.post(settings.x_api_url, text, keys, timeout=settings.social_timeout_seconds)
    block = settings.facebook_secret_block
    credentials = facebook.Credentials.from_secret(_secret(block), block)
    link = f"{settings.site_url.rstrip('/')}/newcases.html"
    return facebook.post(
        settings.facebook_graph_url,
        settings.facebook_page_id,
        text,
        link,
        credentials,
        timeout=settings.social_timeout_seconds,
    )


def _save(bucket: s3.Bucket, key: str, state: social.ChannelState, etag: str | None) -> str:
    return bucket.put(key, state.dumps(), content_type=STATE_TYPE, tags={"lifecycle": "state"}, if_match=etag).etag


def post_channel(channel: str, bucket: s3.Bucket, update: str | None, text: str | None, settings: Settings) -> str:
    """Plan, mark ``posting``, post, record the outcome; returns a note for the run summary ("" if nothing)."""
    key = social.state_key(channel)
    stored = bucket.get(key)
    state = social.ChannelState.parse(stored.body) if stored else None
    etag = stored.etag if stored else None
    plan = social.plan(state, update, text)
    planned = plan.state  # set for "post" and "interrupted"
    if plan.action == "nothing" or planned is None:
        return ""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if plan.action == "interrupted":
        _save(bucket, key, planned.failed(social.PostFailed(plan.reason, uncertain=True), now), etag)
        return f"[social] {channel}: {plan.reason}"
    try:
        etag = _save(bucket, key, planned.attempted(now), etag)
    except ConcurrentWriteError:
        return f"[social] {channel}: another run is posting this update"
    try:
        post_id = send(channel, planned.text, settings)
    except social.PostFailed as err:
        _save(bucket, key, planned.attempted(now).failed(err, now), etag)
        then = "not resent: check the account" if err.uncertain else "retried next run"
        return f"[social] {channel}: post failed ({err}); {then}"
    _save(bucket, key, planned.attempted(now).posted(post_id, now), etag)
    return f"[social] {channel}: posted {post_id} ({plan.reason})"


def post_social_summaries(changes: pd.DataFrame | None, as_of: date, settings: Settings) -> list[str]:
    """``changes`` of the update this run published (``None``: only retry what an earlier run could not post).

    With every channel off (the default) this is a no-op, not even a task run.
    """
    channels = enabled_channels(settings)
    return post_to_channels(channels, changes, as_of, settings) if channels else []


@task(name="Post the update to social channels", cache_policy=NO_CACHE)
def post_to_channels(channels: list[str], changes: pd.DataFrame | None, as_of: date, settings: Settings) -> list[str]:
    logger = get_run_logger()
    text = social.post_text(changes, as_of, settings.site_url) if changes is not None else None
    notes = []
    try:
        bucket = s3.bucket_of(settings)
        update = s3.etag_of(bucket, pipeline.PAGE_KEY)
    except Exception as err:  # the update is published already: nothing here may fail it
        notes.append(f"[social] cannot read s3://{settings.bucket}/{pipeline.PAGE_KEY} ({err}); retried next run")
        channels = []
    for channel in channels:
        try:
            note = post_channel(channel, bucket, update, text, settings)
        except Exception as err:
            note = f"[social] {channel}: {type(err).__name__}: {err}; retried next run"
        if note:
            notes.append(note)
    for note in notes:
        (logger.warning if "failed" in note or "retried" in note else logger.info)("%s", note)
    if notes:
        create_markdown_artifact(
            key="social-posts", markdown="\n".join(f"- {n}" for n in notes), description="Social summary posts"
        )
    return notes
