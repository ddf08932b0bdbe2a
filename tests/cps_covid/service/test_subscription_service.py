"""The subscription service over real HTTP: uvicorn on loopback, SNS on the moto server, abuse included."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cps_covid.service.app import create_app
from cps_covid.service.server import running
from cps_covid.settings import Settings
from local.aws_emulator import Emulated

SITE = "https://cpscovid.test"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LONG_WINDOW = 86_400  # no token comes back while a test runs: counts are exact
HTTP = httpx.Client(timeout=30)
"""One client for the module (making one costs ~0.1 s); thread-safe, so the flood shares it too."""


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    HTTP.close()


@dataclass(frozen=True)
class Topic:
    arn: str
    client: Any


def new_topic(moto_endpoint: str) -> Topic:
    """A new subscribers' topic on the moto server (no account reset: the service needs nothing else)."""
    client = Emulated(moto_endpoint, "", "", "").client("sns")
    return Topic(client.create_topic(Name=f"subscribers-{uuid.uuid4().hex[:12]}")["TopicArn"], client)


@pytest.fixture
def topic(moto_endpoint: str) -> Topic:
    return new_topic(moto_endpoint)


@pytest.fixture(scope="module")
def refusing(moto_endpoint: str) -> Iterator[tuple[str, Topic]]:
    """One service for the tests of refused requests (they never subscribe): no limits in the way."""
    topic = new_topic(moto_endpoint)
    values = {"topic_arn": topic.arn, "site_origin": SITE, "subscribe_client_limit": 100_000}
    settings = Settings.from_mapping(values | {"subscribe_global_limit": 100_000}, require=("topic_arn",))
    with running(create_app(settings, topic.client), settings) as url:
        yield url, topic


@pytest.fixture
def start_service(topic: Topic) -> Iterator[Callable[..., str]]:
    """``start_service(**settings)``: a fresh app (fresh rate limits) on its own port; returns its base URL."""
    with ExitStack() as stack:

        def start(**overrides: object) -> str:
            values = {"topic_arn": topic.arn, "site_origin": SITE} | overrides
            settings = Settings.from_mapping(values, require=("topic_arn",))
            return stack.enter_context(running(create_app(settings, topic.client), settings))

        yield start


def subscribers(topic: Topic) -> list[str]:
    """The addresses subscribed to the topic, as the moto server holds them."""
    listed = topic.client.list_subscriptions_by_topic(TopicArn=topic.arn)["Subscriptions"]
    return sorted(s["Endpoint"] for s in listed if s["Protocol"] == "email")


def post(url: str, body: bytes | str, headers: dict[str, str] | None = None) -> httpx.Response:
    return HTTP.post(f"{url}/subscribe", content=body, headers=headers or JSON, timeout=30)


def subscribe(url: str, address: object, **headers: str) -> httpx.Response:
    return post(url, json.dumps({"email": address}), JSON | headers)


def test_health_answers(start_service) -> None:
    url = start_service()
    answer = HTTP.get(f"{url}/healthz", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert "server" not in answer.headers and answer.headers["x-content-type-options"] == "nosniff"


def test_a_json_subscription_reaches_the_topic_and_is_told_to_confirm(start_service, topic) -> None:
    url = start_service()
    answer = subscribe(url, "  Parent.One+covid@Example.ORG ")
    assert answer.status_code == 202
    assert answer.json()["status"] == "accepted" and "confirmation mail" in answer.json()["message"]
    assert subscribers(topic) == ["Parent.One+covid@example.org"]


def test_a_form_subscription_is_accepted_too(start_service, topic) -> None:
    url = start_service()
    answer = post(url, "email=teacher%40school.example.com", FORM)
    assert answer.status_code == 202
    assert subscribers(topic) == ["teacher@school.example.com"]


def test_an_international_domain_is_subscribed_in_its_ascii_form(start_service, topic) -> None:
    url = start_service()
    assert subscribe(url, "eltern@bücher.example").status_code == 202
    assert subscribers(topic) == ["eltern@xn--bcher-kva.example"]


def test_a_known_address_gets_the_same_answer_as_a_new_one(start_service, topic) -> None:
    url = start_service()
    first = subscribe(url, "again@example.org")
    second = subscribe(url, "again@example.org")
    fresh = subscribe(url, "other@example.org")
    assert first.status_code == second.status_code == fresh.status_code == 202
    assert first.content == second.content == fresh.content
    assert subscribers(topic) == ["again@example.org", "other@example.org"]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("", "an email address is required"),
        ("no-at-sign.example.org", "exactly one @"),
        ("two@@example.org", "exactly one @"),
        ("victim@example.org\r\nBcc: everyone@example.org", "line breaks or control characters"),
        ("<script>alert(1)</script>@example.org", "characters that are not allowed"),
        ('"quoted local"@example.org', "characters that are not allowed"),
        ("a" * 65 + "@example.org", "1 to 64 characters"),
        ("user@" + "b" * 250 + ".org", "longer than 254 characters"),
        ("user@localhost", "needs a dot"),
        ("user@[127.0.0.1]", "not a valid domain name"),
        ("user@example.123", "top-level domain"),
        ("user@-bad-.example.org", "not a valid domain name"),
        ("dots..twice@example.org", "not allowed"),
        (42, "must be a text value"),
        (None, "must be a text value"),
        (["a@example.org"], "must be a text value"),
    ],
)
def test_invalid_addresses_are_refused_naming_the_problem_without_echoing_it(refusing, address, reason) -> None:
    url, topic = refusing
    answer = subscribe(url, address)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert reason in answer.json()["error"]
    if isinstance(address, str) and address:
        assert address not in answer.text and "script" not in answer.text
    assert subscribers(topic) == []


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        (JSON, b'{"email": ', 400, "not valid JSON"),
        (JSON, b"", 400, "not valid JSON"),
        (JSON, b'["a@example.org"]', 400, "must be an object"),
        (JSON, b'{"mail": "a@example.org"}', 400, "no email field"),
        (JSON, b'{"email": "a@example.org"', 400, "not valid JSON"),
        (JSON, b"\xff\xfe\x00{", 400, "not UTF-8"),
        (FORM, b"email=a%40example.org&email=b%40example.org", 400, "exactly one email field"),
        (FORM, b"name=someone", 400, "exactly one email field"),
        ({"Content-Type": "text/plain"}, b"a@example.org", 415, "text/plain is not accepted"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x--", 415, "multipart/form-data is not accepted"),
        ({}, b"a@example.org", 415, "missing or unknown is not accepted"),
        ({"Content-Type": "application/json\r\nX: y"}, b"{}", 400, None),
    ],
)
def test_malformed_bodies_get_a_clear_error(refusing, headers, body, status, reason) -> None:
    url, topic = refusing
    try:
        answer = HTTP.post(f"{url}/subscribe", content=body, headers=headers, timeout=30)
    except httpx.LocalProtocolError:  # the client itself refuses a header with a line break: nothing was sent
        assert reason is None
        return
    assert answer.status_code == status
    assert reason in answer.json()["error"]
    assert "Traceback" not in answer.text
    assert subscribers(topic) == []


def test_a_one_megabyte_body_is_refused_unread(start_service, topic) -> None:
    url = start_service()
    padded = json.dumps({"email": "big@example.org", "pad": "x" * 1_048_576}).encode()

    declared = post(url, padded)
    chunked = HTTP.post(
        f"{url}/subscribe",
        content=iter([padded[i : i + 65536] for i in range(0, len(padded), 65536)]),
        headers=JSON,
        timeout=30,
    )

    assert declared.status_code == chunked.status_code == 413
    assert "larger than 2048 bytes" in declared.json()["error"]
    assert "transfer-encoding" not in declared.request.headers
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert subscribers(topic) == []
    assert HTTP.get(f"{url}/healthz", timeout=10).status_code == 200


def test_unknown_paths_and_methods_answer_json(start_service) -> None:
    url = start_service()
    missing = HTTP.get(f"{url}/admin", timeout=10)
    wrong = HTTP.get(f"{url}/subscribe", timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
    assert (wrong.status_code, wrong.json()) == (405, {"error": "method not allowed"})


def test_cors_is_granted_to_the_site_origin_only(start_service, topic) -> None:
    url = start_service()
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}

    ours = HTTP.options(f"{url}/subscribe", headers=preflight | {"Origin": SITE}, timeout=10)
    theirs = HTTP.options(f"{url}/subscribe", headers=preflight | {"Origin": "https://evil.example"}, timeout=10)
    from_site = subscribe(url, "site@example.org", Origin=SITE)
    from_elsewhere = subscribe(url, "elsewhere@example.org", Origin="https://evil.example")

    assert ours.status_code == 200 and ours.headers["access-control-allow-origin"] == SITE
    assert "POST" in ours.headers["access-control-allow-methods"]
    assert theirs.status_code == 400 and "access-control-allow-origin" not in theirs.headers
    assert from_site.status_code == 202 and from_site.headers["access-control-allow-origin"] == SITE
    assert from_elsewhere.status_code == 403 and "access-control-allow-origin" not in from_elsewhere.headers
    assert subscribers(topic) == ["site@example.org"]


def test_one_client_is_limited_and_told_when_to_retry(start_service, topic) -> None:
    url = start_service(subscribe_client_limit=3, subscribe_client_window_seconds=3600)
    answers = [subscribe(url, f"reader{i}@example.org") for i in range(5)]

    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    retry_after = int(answers[3].headers["retry-after"])
    assert 1100 <= retry_after <= 1200  # one token every 3600/3 s
    assert "too many requests" in answers[3].json()["error"]
    assert subscribers(topic) == ["reader0@example.org", "reader1@example.org", "reader2@example.org"]


def test_clients_behind_the_trusted_proxy_are_limited_each_and_all_together(start_service, topic) -> None:
    url = start_service(
        subscribe_client_limit=2,
        subscribe_client_window_seconds=LONG_WINDOW,
        subscribe_global_limit=5,
        subscribe_global_window_seconds=LONG_WINDOW,
    )

    def from_client(ip: str, n: int) -> int:
        return subscribe(url, f"c{n}.{ip.replace('.', '-')}@example.org", **{"X-Forwarded-For": ip}).status_code

    first = [from_client("198.51.100.1", n) for n in range(3)]
    second = [from_client("198.51.100.2", n) for n in range(2)]
    third = [from_client("198.51.100.3", n) for n in range(2)]

    assert first == [202, 202, 429]  # its own limit
    assert second == [202, 202]
    assert third == [202, 429]  # the overall limit (5) reached
    assert len(subscribers(topic)) == 5


def test_an_untrusted_peer_cannot_choose_its_client_address(start_service, topic) -> None:
    url = start_service(trusted_proxies="192.0.2.10", subscribe_client_limit=1, subscribe_client_window_seconds=3600)
    spoofed = [subscribe(url, f"s{i}@example.org", **{"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(3)]
    assert [a.status_code for a in spoofed] == [202, 429, 429]


def test_a_thousand_rapid_requests_are_answered_and_bounded(start_service, topic) -> None:
    url = start_service(
        subscribe_client_limit=5,
        subscribe_client_window_seconds=LONG_WINDOW,
        subscribe_global_limit=40,
        subscribe_global_window_seconds=LONG_WINDOW,
    )
    target = f"{url}/subscribe"
    kinds = [
        lambda i: HTTP.post(target, json={"email": f"flood{i}@example.org"}),
        lambda i: HTTP.post(target, content=b'{"email": "broken', headers=JSON),
        lambda i: HTTP.post(target, json={"email": f"<script>alert({i})</script>@example.org"}),
        lambda i: HTTP.post(
            target, json={"email": f"spoof{i}@example.org"}, headers={"X-Forwarded-For": f"10.9.{i // 250}.{i % 250}"}
        ),
    ]

    def worker(start: int) -> list[httpx.Response]:
        return [kinds[i % 4](i) for i in range(start, 1000, 20)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = [a for batch in pool.map(worker, range(20)) for a in batch]

    statuses = [a.status_code for a in answers]
    assert len(answers) == 1000 and set(statuses) <= {202, 400, 429}
    accepted = [a for a in answers if a.status_code == 202]
    # every request let through took one of the 40 overall tokens, whatever the client claimed to be
    assert len([a for a in answers if a.status_code != 429]) == 40 and 35 <= len(accepted) <= 40
    assert all(a.headers.get("retry-after", "").isdigit() for a in answers if a.status_code == 429)
    assert all("Traceback" not in a.text and "<script>" not in a.text for a in answers)
    assert len(subscribers(topic)) == len(accepted)
    assert HTTP.get(f"{url}/healthz", timeout=10).status_code == 200


def test_sns_failing_is_a_503_without_details(start_service, caplog) -> None:
    url = start_service(topic_arn="arn:aws:sns:us-east-1:123456789012:no-such-topic")
    with caplog.at_level(logging.INFO, logger="cps_covid.service"):
        answer = subscribe(url, "waiting@example.org")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "60"
    assert answer.json() == {"error": "subscriptions are unavailable right now: try again later"}
    (logged,) = [r for r in caplog.records if getattr(r, "fields", {}).get("outcome") == "sns-error"]
    assert logged.fields["error"] == "NotFound"


def test_logs_are_structured_and_never_hold_a_whole_address(start_service, caplog) -> None:
    from cps_covid.service.logs import JsonFormatter

    url = start_service()
    with caplog.at_level(logging.INFO, logger="cps_covid.service"):
        subscribe(url, "private.person@example.org")
        subscribe(url, "private.person@example.org\nBcc: x@example.org")

    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "cps_covid.service"]
    accepted = [e for e in lines if e["outcome"] == "accepted"]
    invalid = [e for e in lines if e["outcome"] == "invalid"]
    assert accepted[0]["address"] == "p***@example.org" and accepted[0]["state"] == "already-confirmed"
    assert len(accepted[0]["client"]) == 12 and "127.0.0.1" not in json.dumps(lines)
    assert invalid[0]["status"] == 400 and "line breaks" in invalid[0]["reason"]
    assert "private.person" not in json.dumps(lines) + caplog.text


def test_an_unexpected_error_is_a_bare_500_and_its_traceback_stays_in_the_log(caplog) -> None:
    settings = Settings.from_mapping({"topic_arn": "arn:aws:sns:us-east-1:123456789012:t"}, require=("topic_arn",))
    broken = create_app(settings, sns_client=None)  # a misconfigured deployment: no SNS client at all
    with caplog.at_level(logging.INFO, logger="cps_covid.service"), running(broken, settings) as url:
        answer = subscribe(url, "someone@example.org")
    assert answer.status_code == 500 and answer.json() == {"error": "internal error"}
    assert "Traceback" not in answer.text and "AttributeError" not in answer.text
    (logged,) = [r for r in caplog.records if r.getMessage() == "unhandled-error"]
    assert logged.fields["error"] == "AttributeError" and logged.exc_info is not None
