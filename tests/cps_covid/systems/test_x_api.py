"""The X API client against the loopback stand-in: request shape, OAuth 1.0a, refusals, lost answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from standins.social_servers import Fault, XApiStandIn

from cps_covid.rules.social import PostFailed
from cps_covid.systems import x_api

KEYS = {"api_key": "ck-123", "api_secret": "cs/secret+=", "access_token": "1-tok", "access_token_secret": "ts&secret"}
CREDENTIALS = x_api.Credentials(**KEYS)


@pytest.fixture
def x() -> Iterator[XApiStandIn]:
    with XApiStandIn(*KEYS.values()) as server:
        yield server


def test_a_post_is_signed_json_and_answers_its_id(x) -> None:
    post_id = x_api.post(x.url, "CPS COVID update: 3 new cases", CREDENTIALS, timeout=5)

    (request,) = x.requests
    assert post_id == x.posts[0]["id"] and x.posts[0]["text"] == "CPS COVID update: 3 new cases"
    assert request.path == "/2/tweets" and request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"text": "CPS COVID update: 3 new cases"}
    authorization = request.headers["authorization"]
    assert authorization.startswith("OAuth ") and 'oauth_consumer_key="ck-123"' in authorization
    assert "cs/secret" not in authorization and "ts&secret" not in authorization


def test_wrong_secrets_are_refused_by_the_signature_check(x) -> None:
    wrong = x_api.Credentials(**KEYS | {"api_secret": "not-the-secret"})
    with pytest.raises(PostFailed, match="HTTP 401 Unauthorized") as refused:
        x_api.post(x.url, "hello", wrong, timeout=5)
    assert not refused.value.uncertain and x.posts == []


def test_a_duplicate_text_counts_as_posted(x) -> None:
    x_api.post(x.url, "same text", CREDENTIALS, timeout=5)
    assert x_api.post(x.url, "same text", CREDENTIALS, timeout=5) == "duplicate"
    assert len(x.posts) == 1


def test_a_server_error_is_a_definite_failure(x) -> None:
    x.fail(Fault(503, {"title": "Service Unavailable"}))
    with pytest.raises(PostFailed, match="HTTP 503 Service Unavailable") as failed:
        x_api.post(x.url, "hello", CREDENTIALS, timeout=5)
    assert not failed.value.uncertain


def test_an_answer_that_never_comes_is_uncertain(x) -> None:
    x.fail(Fault(201, {"data": {"id": "1"}}, hold=threading.Event()))
    with pytest.raises(PostFailed, match="no answer after sending") as lost:
        x_api.post(x.url, "hello", CREDENTIALS, timeout=0.5)
    assert lost.value.uncertain


def test_nothing_listening_is_a_definite_failure() -> None:
    with XApiStandIn(*KEYS.values()) as gone:
        url = gone.url
    with pytest.raises(PostFailed, match="cannot connect") as failed:
        x_api.post(url, "hello", CREDENTIALS, timeout=2)
    assert not failed.value.uncertain


def test_credentials_come_whole_from_the_secret_block() -> None:
    assert x_api.Credentials.from_secret(KEYS, "cps-covid-x") == CREDENTIALS
    with pytest.raises(PostFailed, match="has no access_token_secret"):
        x_api.Credentials.from_secret(KEYS | {"access_token_secret": ""}, "cps-covid-x")
    with pytest.raises(PostFailed, match="must hold a JSON object"):
        x_api.Credentials.from_secret("a-string", "cps-covid-x")
