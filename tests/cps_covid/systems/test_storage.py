"""The storage contract, held by the in-memory storage the unit tests use and by the S3 bucket on moto."""

from __future__ import annotations

import pytest

from cps_covid.errors import ConcurrentWriteError
from cps_covid.systems import s3
from cps_covid.systems.storage import Storage, put_or_match
from local.memory import MemoryStorage


@pytest.fixture(params=["memory", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "memory":
        return MemoryStorage()
    emulated = request.getfixturevalue("aws")
    return s3.Bucket(emulated.client("s3"), emulated.bucket)


def put(storage: Storage, key: str, body: bytes, if_match: str | None = None) -> str:
    return storage.put(key, body, content_type="text/plain", tags={"lifecycle": "state"}, if_match=if_match).etag


def test_a_new_key_is_written_once_and_read_back_with_its_etag(storage: Storage) -> None:
    assert storage.get("state/test.json") is None
    etag = put(storage, "state/test.json", b"one")
    found = storage.get("state/test.json")
    assert found is not None and (found.body, found.etag) == (b"one", etag)
    with pytest.raises(ConcurrentWriteError):
        put(storage, "state/test.json", b"two")  # without if_match: only where nothing is
    assert storage.get("state/test.json").body == b"one"


def test_a_write_over_an_etag_succeeds_once(storage: Storage) -> None:
    first = put(storage, "state/test.json", b"one")
    second = put(storage, "state/test.json", b"two", if_match=first)
    assert second != first and storage.get("state/test.json").body == b"two"
    with pytest.raises(ConcurrentWriteError):
        put(storage, "state/test.json", b"three", if_match=first)  # a writer that read "one" is refused
    assert storage.get("state/test.json").body == b"two"


def test_keys_are_listed_by_prefix_in_order(storage: Storage) -> None:
    for key in ("runs/b/x.html", "runs/a/y.html", "state/z.json"):
        put(storage, key, b".")
    assert storage.keys("runs/") == ["runs/a/y.html", "runs/b/x.html"]


def test_a_concurrent_writer_of_the_same_bytes_is_no_conflict_but_other_bytes_are(storage: Storage) -> None:
    put(storage, "historical/2021-09-22-cases.html", b"the page")  # the run that won the race

    same = put_or_match(storage, "historical/2021-09-22-cases.html", b"the page", content_type="text/html", tags={})
    assert same is None
    with pytest.raises(ConcurrentWriteError):
        put_or_match(storage, "historical/2021-09-22-cases.html", b"another page", content_type="text/html", tags={})
    written = put_or_match(storage, "historical/2021-09-23-cases.html", b"new", content_type="text/html", tags={})
    assert written is not None and storage.get("historical/2021-09-22-cases.html").body == b"the page"
