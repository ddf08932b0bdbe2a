"""Token buckets per client and overall, driven by an explicit clock."""

from __future__ import annotations

import pytest

from cps_covid.rules.ratelimit import RateLimiter


def test_a_client_bursts_to_its_limit_then_waits_for_a_token() -> None:
    limiter = RateLimiter(3, 60, 100, 60)
    assert [limiter.check("a", 0.0).allowed for _ in range(3)] == [True, True, True]
    refused = limiter.check("a", 1.0)
    assert (refused.allowed, refused.scope) == (False, "client")
    assert refused.retry_after == pytest.approx(19.0)  # a token every 20 s, 1 s already passed
    assert limiter.check("a", 20.0).allowed and not limiter.check("a", 20.0).allowed
    assert limiter.check("b", 20.0).allowed


def test_the_overall_limit_holds_across_clients() -> None:
    limiter = RateLimiter(5, 60, 4, 40)
    answers = [limiter.check(f"client-{i}", 0.0) for i in range(6)]
    assert [a.allowed for a in answers] == [True, True, True, True, False, False]
    assert answers[4].scope == "overall" and answers[4].retry_after == pytest.approx(10.0)
    assert limiter.check("client-9", 10.0).allowed


def test_a_refused_request_takes_no_token() -> None:
    limiter = RateLimiter(1, 10, 2, 10)
    assert limiter.check("a", 0.0).allowed
    assert not limiter.check("a", 0.0).allowed  # refused by its own limit: the overall bucket keeps its token
    assert limiter.check("b", 0.0).allowed


def test_tokens_never_exceed_the_limit_after_a_long_pause() -> None:
    limiter = RateLimiter(2, 10, 100, 10)
    limiter.check("a", 0.0)
    assert [limiter.check("a", 10_000.0).allowed for _ in range(3)] == [True, True, False]


def test_the_client_table_is_bounded() -> None:
    limiter = RateLimiter(1, 3600, 1_000_000, 1, max_clients=100)
    for i in range(1000):
        limiter.check(f"spoofed-{i}", 0.0)
    assert len(limiter.clients) == 100 and "spoofed-999" in limiter.clients and "spoofed-0" not in limiter.clients


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0, 60, 10, 60)
