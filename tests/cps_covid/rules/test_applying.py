"""A claimed ledger entry replayed: the same bytes it planned, or a refusal naming the objects."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from cps_covid.errors import ConcurrentWriteError
from cps_covid.rules import applying, outputs, publish_plan
from cps_covid.rules.ledger import Entry
from cps_covid.rules.publish_plan import plan_writes
from cps_covid.rules.schema import LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID

AS_OF = date(2021, 9, 23)
UPDATED = datetime(2021, 9, 23, 16, 5, tzinfo=ZoneInfo("America/Chicago"))


@pytest.fixture(scope="module")
def claimed(real_files, feed_dir, sample_merge) -> tuple[Entry, bytes, dict[str, tuple[bytes, str]]]:
    """An entry claimed for the sample feed on the real history, and the objects it planned."""
    payload = (feed_dir / "2021-09-23-cases.csv").read_bytes()
    added = sample_merge.schools[sample_merge.schools[SCHOOL_ID] == "400199"]
    entry = Entry.claiming(
        as_of=AS_OF,
        now=UPDATED,
        flow_run="r1",
        raw_key="raw/2021-09-23-cases.csv",
        sha256="0" * 64,
        source="feed.csv",
        fetched_at=UPDATED,
        lease_seconds=900,
        new_season=None,
        ignore_ids=frozenset({"610377"}),
        profiles=added[[SCHOOL_ID, SCHOOL, LATITUDE, LONGITUDE]].to_dict("records"),
        changes=[],
    )
    result = applying.replay(entry, payload, real_files["allCpsCovidData.csv"], real_files["CPStotals.csv"])
    objects = outputs.build_publication(result, AS_OF, UPDATED, "https://cpscovid.com/").objects
    writes = plan_writes(objects, {})
    return entry.planned(writes, "subject", "message"), payload, objects


def test_a_resumed_entry_gives_the_bytes_it_planned_whether_or_not_its_table_was_written(real_files, claimed):
    entry, payload, planned = claimed
    before = outputs.resumed_objects(
        entry, payload, real_files["allCpsCovidData.csv"], real_files["CPStotals.csv"], {}, "https://cpscovid.com/"
    )
    assert before == planned

    written_schools, written_totals = planned[publish_plan.SCHOOLS_KEY][0], planned[publish_plan.TOTALS_KEY][0]
    after = outputs.resumed_objects(entry, payload, written_schools, written_totals, {}, "https://cpscovid.com/")
    assert after == planned


def test_a_resume_on_a_table_someone_else_changed_is_refused_naming_the_objects(real_files, claimed):
    entry, payload, _ = claimed
    edited = real_files["allCpsCovidData.csv"].replace(b"ADDAMS", b"ADAMS", 1)  # a hand edit since the claim

    with pytest.raises(ConcurrentWriteError, match=rf"^update {entry.id} cannot be resumed: data/allCpsCovidData\.csv"):
        outputs.resumed_objects(entry, payload, edited, real_files["CPStotals.csv"], {}, "https://cpscovid.com/")


def test_a_resume_whose_objects_are_not_the_planned_set_is_refused(real_files, claimed):
    entry, payload, _ = claimed
    without_page = dataclasses.replace(entry, objects={k: v for k, v in entry.objects.items() if k != "newcases.html"})
    extra = dataclasses.replace(without_page, objects=without_page.objects | {"data/other.csv": "0" * 32})

    with pytest.raises(ConcurrentWriteError, match="its objects would differ"):
        outputs.resumed_objects(extra, payload, real_files["allCpsCovidData.csv"], real_files["CPStotals.csv"], {}, "x")
