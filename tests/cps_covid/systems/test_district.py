"""The district's feed over a real loopback socket: the conditional GET the watch asks with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cps_covid.systems import district
from local.feed_server import FeedServer, Route

BODY = b'"Result Date","CPS School ID","School","Role"\r\n'


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def get(url: str, validators: dict[str, str] | None = None) -> district.Fetched:
    return district.fetch(url, timeout=5, max_bytes=1_000_000, validators=validators)


def test_a_source_with_validators_answers_an_unchanged_body_with_304(feeds: FeedServer) -> None:
    url = feeds.route("/feed.csv", Route(BODY, validators=True))
    first = get(url)
    assert first.body == BODY and first.etag.startswith('"') and first.last_modified and not first.not_modified

    unchanged = get(url, {"If-None-Match": first.etag})
    assert unchanged.not_modified and unchanged.body == b""
    by_date = get(url, {"If-Modified-Since": first.last_modified})
    assert by_date.not_modified

    feeds.route("/feed.csv", Route(BODY + b'"09/23/2021","609772","ADDAMS","Student"\r\n', validators=True))
    changed = get(url, {"If-None-Match": first.etag})
    assert not changed.not_modified and changed.etag != first.etag and changed.sha256 != first.sha256
    assert feeds.not_modified["/feed.csv"] == 2


def test_a_source_without_validators_sends_its_body_every_time(feeds: FeedServer) -> None:
    url = feeds.route("/plain.csv", Route(BODY))
    first = get(url)
    assert (first.etag, first.last_modified) == ("", "")
    again = get(url, {"If-None-Match": '"anything"'})
    assert not again.not_modified and again.sha256 == first.sha256  # the watch compares hashes instead
