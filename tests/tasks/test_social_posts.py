"""Social posts after an update: loopback X and Graph API stand-ins, secrets in Prefect Secret blocks."""

from __future__ import annotations

import json
import threading
from datetime import date
from urllib.parse import parse_qs

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from standins.social_servers import Fault

from cps_covid.rules import open_data, publish_plan, social
from flows.update import run_update

pytestmark = pytest.mark.usefixtures("prefect_api")

AS_OF = date(2021, 9, 23)
PAGE = "2048000000001"  # the conftest's channels fixture's Facebook page


def run(**parameters):
    state = run_update(**parameters)
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    return state.result(), {a.key: a.data for a in artifacts if a.key}


def channel_state(aws, channel: str) -> social.ChannelState:
    body = aws.client("s3").get_object(Bucket=aws.bucket, Key=social.state_key(channel))["Body"].read()
    return social.ChannelState.parse(body)


def test_an_update_is_posted_once_on_each_channel(aws, channels) -> None:
    x, graph = channels
    summary, artifacts = run(as_of=AS_OF)

    (posted,) = x.posts
    text = posted["text"]
    assert json.loads(x.requests[0].body) == {"text": text}
    assert text.startswith("CPS COVID update, Sep. 23, 2021: 22 new cases at 13 schools: ")
    assert text.split("13 schools: ")[1].split(", ")[0].endswith("(4)")  # the school with most cases first
    assert text.endswith("\nList: https://cpscovid.com/newcases.html") and social.x_length(text) <= 280
    (post,) = graph.posts
    form = parse_qs(graph.requests[0].body.decode())
    assert post["message"] == text and form["link"] == ["https://cpscovid.com/newcases.html"]
    assert any(e.startswith("[social] x: posted ") for e in summary["notes"])
    assert (
        "[social] facebook: posted" in artifacts["social-posts"] and "[social] x: posted" in artifacts["update-summary"]
    )
    page = aws.client("s3").head_object(Bucket=aws.bucket, Key="newcases.html")["ETag"]
    assert channel_state(aws, "x").update == page and channel_state(aws, "x").status == "posted"

    again, _ = run(as_of=AS_OF)  # the same update: nothing new to post, nothing retried

    assert (len(x.requests), len(graph.requests)) == (1, 1)
    assert not any(e.startswith("[social]") for e in again["notes"])


def test_a_failing_channel_never_fails_the_update_and_is_retried_next_run(aws, channels) -> None:
    x, graph = channels
    x.fail(Fault(503, {"title": "Service Unavailable"}))
    graph.fail(Fault(200, {"id": f"{PAGE}_1"}, hold=threading.Event()))  # its answer never arrives in time

    summary, artifacts = run(as_of=AS_OF)

    written = {w["key"] for w in summary["written"]}
    assert set(publish_plan.PUBLISHED_KEYS) | {open_data.PACKAGE_KEY} <= written  # the data update went through whole
    assert summary["message_id"]
    assert x.posts == [] and channel_state(aws, "x").status == "pending"
    assert "[social] x: post failed (X API" in artifacts["social-posts"] and "HTTP 503" in artifacts["update-summary"]
    assert channel_state(aws, "facebook").status == "uncertain"
    assert any("facebook: post failed" in e and "not resent" in e for e in summary["notes"])

    later, _ = run(as_of=AS_OF)  # the same feed: no data to publish, but the refused post is retried

    assert len(x.posts) == 1 and channel_state(aws, "x").status == "posted"
    assert len(graph.requests) == 1  # the post that may be out is never sent twice
    assert any(e.startswith("[social] x: posted") and "attempt 2" in e for e in later["notes"])
