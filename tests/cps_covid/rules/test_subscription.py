"""Address rules, request bodies and the SNS answers of the subscription service (pure)."""

from __future__ import annotations

import pytest

from cps_covid.rules.subscription import (
    InvalidAddress,
    InvalidRequest,
    UnsupportedBody,
    address_from_body,
    client_tag,
    mask_address,
    normalise_address,
    subscription_state,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("parent@example.org", "parent@example.org"),
        ("  Parent.Name+cps@Mail.Example.ORG\t", "Parent.Name+cps@mail.example.org"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("x@sub-domain.example.co.uk", "x@sub-domain.example.co.uk"),
        ("eltern@bücher.example", "eltern@xn--bcher-kva.example"),
        ("a@xn--80ak6aa92e.com", "a@xn--80ak6aa92e.com"),
    ],
)
def test_valid_addresses_are_normalised(given: str, expected: str) -> None:
    assert normalise_address(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("a@example.org\nBcc: b@example.org", "line breaks"),
        ("a@example.org\x00", "control characters"),
        ("a\u2028@example.org", "line breaks"),
        ("a@b@example.org", "exactly one @"),
        ("@example.org", "1 to 64"),
        ("a@", "domain after @ is missing"),
        ("a.@example.org", "not allowed"),
        (".a@example.org", "not allowed"),
        ("a b@example.org", "not allowed"),
        ("a@exa_mple.org", "not a valid domain"),
        ("a@example.c", "top-level domain"),
        ("a@" + "x" * 64 + ".org", "not a valid domain"),
        ("x" * 64 + "@" + ".".join(["d" * 60] * 4) + ".org", "longer than 254"),
        (b"a@example.org", "text value"),
    ],
)
def test_invalid_addresses_say_why(given: object, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason) as raised:
        normalise_address(given)
    if isinstance(given, str) and given:
        assert given.strip() not in str(raised.value)


def test_bodies_give_the_email_field() -> None:
    assert (
        address_from_body("application/json; charset=utf-8", b'{"email": "a@example.org", "x": 1}') == "a@example.org"
    )
    assert address_from_body("application/x-www-form-urlencoded", b"email=a%40example.org") == "a@example.org"
    assert address_from_body("Application/JSON", b'{"email": null}') is None


@pytest.mark.parametrize(
    ("content_type", "body", "error", "reason"),
    [
        ("application/json", b"{", InvalidRequest, "line 1, column 2"),
        ("application/json", b"1", InvalidRequest, "must be an object"),
        ("application/x-www-form-urlencoded", b"", InvalidRequest, "exactly one email field"),
        ("application/x-www-form-urlencoded", b"email", InvalidRequest, "malformed"),
        ("text/html", b"<p>", UnsupportedBody, "text/html is not accepted"),
        ("<script>/x", b"", UnsupportedBody, "missing or unknown"),
    ],
)
def test_bodies_that_are_not_requests_say_why(content_type: str, body: bytes, error: type, reason: str) -> None:
    with pytest.raises(error, match=reason):
        address_from_body(content_type, body)


def test_sns_answers_are_told_apart_but_answered_alike() -> None:
    assert subscription_state("pending confirmation") == "pending-confirmation"
    assert subscription_state("arn:aws:sns:us-east-1:123456789012:cps-new-cases:4f1c") == "already-confirmed"
    assert subscription_state("") == "unknown"


def test_logs_get_a_mask_and_a_pseudonym() -> None:
    assert mask_address("parent@example.org") == "p***@example.org"
    assert mask_address("broken") == "***"
    salt = b"s" * 32
    assert client_tag("198.51.100.7", salt) == client_tag("198.51.100.7", salt) != client_tag("198.51.100.8", salt)
    assert client_tag("198.51.100.7", salt) != client_tag("198.51.100.7", b"t" * 32)
