"""Fixtures of the rules' tests: the bundled feed merged into the real history."""

from __future__ import annotations

import json
from datetime import date

import pytest

from cps_covid.rules import inputs, merge
from cps_covid.rules.schema import SCHOOL_ID

AS_OF = date(2021, 9, 23)


@pytest.fixture(scope="module")
def sample_feed(feed_dir) -> inputs.Feed:
    return inputs.read_feed((feed_dir / "2021-09-23-cases.csv").read_bytes(), "2021-09-23-cases.csv")


@pytest.fixture(scope="module")
def sample_merge(real_history, sample_feed, feed_dir) -> merge.MergeResult:
    ignore = frozenset({"610377"})
    known = json.loads((feed_dir / "school-profiles.json").read_text())
    wanted = inputs.new_school_ids(sample_feed, real_history.schools, ignore)
    assert wanted == ["400199"]
    found = [p | {SCHOOL_ID: str(p["SchoolID"])} for p in known if str(p["SchoolID"]) in wanted]
    profiles = inputs.profiles_frame(found)
    return merge.apply_feed(real_history.schools, sample_feed.totals, AS_OF, profiles=profiles, ignore_ids=ignore)
