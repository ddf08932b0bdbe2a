"""The Graph API client against the loopback stand-in: the page feed, the token and appsecret_proof."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from standins.social_servers import Fault, GraphApiStandIn

from cps_covid.rules.social import PostFailed
from cps_covid.systems import facebook

PAGE = "104857600123"
CREDENTIALS = facebook.Credentials("EAAB-page-token", "app-secret")


@pytest.fixture
def graph() -> Iterator[GraphApiStandIn]:
    with GraphApiStandIn(PAGE, "EAAB-page-token", "app-secret") as server:
        yield server


def test_a_post_goes_to_the_page_feed_with_the_token_in_the_body(graph) -> None:
    post_id = facebook.post(
        graph.graph_url, PAGE, "3 new cases", "https://cpscovid.com/newcases.html", CREDENTIALS, timeout=5
    )

    (request,) = graph.requests
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    assert post_id == f"{PAGE}_9000" and graph.posts[0]["message"] == "3 new cases"
    assert request.path == f"/v21.0/{PAGE}/feed" and "access_token" not in request.path
    assert form["link"] == "https://cpscovid.com/newcases.html" and form["access_token"] == "EAAB-page-token"
    assert form["appsecret_proof"] == facebook.appsecret_proof("EAAB-page-token", "app-secret")


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [
        (facebook.Credentials("expired-token", "app-secret"), "OAuthException 190: Invalid OAuth access token."),
        (facebook.Credentials("EAAB-page-token", "wrong-secret"), "Invalid appsecret_proof"),
        (facebook.Credentials("EAAB-page-token"), "Invalid appsecret_proof"),
    ],
)
def test_bad_credentials_are_refused(graph, credentials, reason) -> None:
    with pytest.raises(PostFailed, match=reason) as refused:
        facebook.post(graph.graph_url, PAGE, "hello", "https://cpscovid.com/newcases.html", credentials, timeout=5)
    assert not refused.value.uncertain and graph.posts == []
    assert "EAAB-page-token" not in str(refused.value)


def test_a_missing_page_is_named_before_any_request(graph) -> None:
    with pytest.raises(PostFailed, match="CPS_COVID_FACEBOOK_PAGE_ID"):
        facebook.post(graph.graph_url, "", "hello", "https://x", CREDENTIALS, timeout=5)
    assert graph.requests == []


def test_a_lost_answer_is_uncertain(graph) -> None:
    graph.fail(Fault(200, {"id": "1"}, hold=threading.Event()))
    with pytest.raises(PostFailed, match="no answer after sending") as lost:
        facebook.post(graph.graph_url, PAGE, "hello", "https://x", CREDENTIALS, timeout=0.5)
    assert lost.value.uncertain


def test_credentials_come_from_the_secret_block() -> None:
    assert facebook.Credentials.from_secret({"page_access_token": "t"}, "b") == facebook.Credentials("t", "")
    with pytest.raises(PostFailed, match="must hold a JSON object with page_access_token"):
        facebook.Credentials.from_secret({"token": "t"}, "cps-covid-facebook")
