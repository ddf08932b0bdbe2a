"""Which objects an update writes, in which order and under which condition (pure)."""

from __future__ import annotations

from cps_covid.rules.publish_plan import invalidation_paths, md5, plan_writes, same_content

CSV = "text/csv"


def test_an_unchanged_object_is_not_written_and_a_new_one_must_still_be_absent() -> None:
    objects = {"data/CPStotals.csv": (b"same", CSV), "newcases.html": (b"<p>new</p>", "text/html")}
    writes = plan_writes(objects, {"data/CPStotals.csv": f'"{md5(b"same")}"'})
    assert [(w.key, w.if_match) for w in writes] == [("newcases.html", None)]


def test_the_per_school_table_goes_first_and_the_page_last() -> None:
    keys = ["newcases.html", "archive/2021-09-22.html", "data/newFormatTest.csv", "data/allCpsCovidData.csv"]
    writes = plan_writes({k: (k.encode(), CSV) for k in keys}, {k: '"old"' for k in keys})
    assert [w.key for w in writes] == [
        "data/allCpsCovidData.csv",
        "data/newFormatTest.csv",
        "newcases.html",
        "archive/2021-09-22.html",  # keys outside the order come after it
    ]
    assert {w.if_match for w in writes} == {'"old"'}  # each write is conditional on what was read
    assert invalidation_paths(writes)[0] == "/data/allCpsCovidData.csv"


def test_same_content_compares_the_single_part_etag() -> None:
    assert same_content(b"x", md5(b"x")) and same_content(b"x", f'"{md5(b"x")}"')
    assert not same_content(b"x", None) and not same_content(b"y", md5(b"x"))
