"""Everything read from the district: the case feed and school profiles, over http(s) or from a path.

Failures are classified here, once: timeouts, connection errors, 5xx and 429
are transient (worth a retry, honouring Retry-After); any other 4xx, an
oversized body or a missing file are permanent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx

from cps_covid.errors import SourceError

USER_AGENT = "cps-covid-etl (+https://cpscovid.com)"


@dataclass(frozen=True)
class Fetched:
    url: str
    body: bytes
    fetched_at: datetime
    content_type: str
    etag: str = ""
    last_modified: str = ""
    """The validators the source gave (``ETag``, ``Last-Modified``), for the next conditional GET."""
    not_modified: bool = False
    """HTTP 304 to a conditional GET: no body, the source is as it was when it gave those validators."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def fetch(url: str, *, timeout: float, max_bytes: int, validators: Mapping[str, str] | None = None) -> Fetched:
    """Read a URL (http, https, file) or a local path, at most ``max_bytes``.

    ``validators`` (``If-None-Match``, ``If-Modified-Since``) make an HTTP GET conditional:
    an unchanged source answers 304 and ``not_modified`` is set, with no body.
    """
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return _fetch_http(url, timeout=timeout, max_bytes=max_bytes, validators=validators or {})
    path = Path(urlparse(url).path if scheme == "file" else url)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SourceError(f"{url}: {size} bytes, more than the {max_bytes}-byte cap", transient=False)
        body = path.read_bytes()
    except OSError as err:
        raise SourceError(f"{url}: cannot be read ({err.strerror})", transient=False) from None
    return Fetched(url, body, datetime.now(UTC), "")


def _fetch_http(url: str, *, timeout: float, max_bytes: int, validators: Mapping[str, str]) -> Fetched:
    headers = {"User-Agent": USER_AGENT} | dict(validators)
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, headers=headers) as client,
            client.stream("GET", url) as response,
        ):
            status = response.status_code
            etag, last_modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
            if status == 304 and validators:
                return Fetched(url, b"", datetime.now(UTC), "", etag, last_modified, not_modified=True)
            if status == 429 or status >= 500:
                raise SourceError(
                    f"{url}: HTTP {status} {response.reason_phrase}",
                    transient=True,
                    retry_after=_retry_after(response.headers.get("Retry-After")),
                )
            if status >= 400:
                raise SourceError(f"{url}: HTTP {status} {response.reason_phrase}", transient=False)
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise SourceError(f"{url}: {declared} bytes, more than the {max_bytes}-byte cap", transient=False)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise SourceError(f"{url}: more than the {max_bytes}-byte cap", transient=False)
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type", "")
    except httpx.TimeoutException as err:
        raise SourceError(
            f"{url}: no complete answer within {timeout} s ({type(err).__name__})", transient=True
        ) from None
    except httpx.TransportError as err:
        raise SourceError(f"{url}: {type(err).__name__}: {err}", transient=True) from None
    return Fetched(url, b"".join(chunks), datetime.now(UTC), content_type, etag, last_modified)


def school_profile(url_template: str, school_id: str, school_year: int, *, timeout: float) -> dict | None:
    """The profile of a school seen for the first time, or ``None`` when the district has none."""
    url = url_template.format(school_id=school_id, school_year=school_year)
    try:
        fetched = fetch(url, timeout=timeout, max_bytes=1_000_000)
    except SourceError as err:
        if err.transient:
            raise
        return None
    try:
        answer = json.loads(fetched.body)
    except json.JSONDecodeError:
        return None
    records = answer if isinstance(answer, list) else [answer]
    for record in records:
        if isinstance(record, dict) and record.get("Short_Name"):
            return record
    return None
