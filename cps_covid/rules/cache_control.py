"""How long browsers and CloudFront may keep each object we publish (pure): one rule per kind of key.

The site changes a few times a day, each change invalidated at
CloudFront, which empties the edge but not a visitor's browser. Without a
``Cache-Control`` header browsers guess (a share of the object's age), so a
visitor could see yesterday's table for hours after an update.

- Live objects (the CSVs, ``newcases.html``, a month's archive index, the
  day's raw feed): a browser keeps them 5 minutes, then asks again, so a
  visitor is at most 5 minutes behind a publish; CloudFront keeps them an hour
  (``s-maxage``), which only matters if an invalidation were ever lost.
- An archived day's page (``historical/YYYY-MM-DD-cases.html``) is written
  once and never replaced: a year, ``immutable``.
- Internal state (``state/``, ``raw/``, a run's Data Docs under ``runs/``) is not for visitors: ``no-store``.
"""

from __future__ import annotations

import re

LIVE = "public, max-age=300, s-maxage=3600"
IMMUTABLE = "public, max-age=31536000, immutable"
INTERNAL = "no-store"
_ARCHIVED_PAGE = re.compile(r"^historical/\d{4}-\d{2}-\d{2}-cases\.html$")
_INTERNAL_PREFIXES = ("state/", "raw/", "runs/")


def cache_control(key: str) -> str:
    """The ``Cache-Control`` header of the object stored under ``key``."""
    if _ARCHIVED_PAGE.match(key):
        return IMMUTABLE
    if key.startswith(_INTERNAL_PREFIXES):
        return INTERNAL
    return LIVE
