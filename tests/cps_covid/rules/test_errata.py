"""The open dataset's errata and provenance tables, from the ledger's entries."""

from __future__ import annotations

from entries import entry

from cps_covid.rules.errata import applied_through, errata_of_events, errata_records, errata_table, provenance_table
from cps_covid.rules.ledger import Ledger
from cps_covid.rules.merge import Event, Tag
from cps_covid.rules.open_data import ERRATA_COLUMNS, PROVENANCE_COLUMNS

CORRECTION = Event(
    Tag.CORRECTION, "609772", "ADDAMS", "season total went down by 1", -1, "20210923", "season total", 3, 2
)


def test_only_what_changed_a_value_is_an_erratum() -> None:
    events = [
        CORRECTION,
        Event(Tag.DRIFT_REPAIR, "610087", "BLAIR", "gTotal set to 2", field="gTotal", old=1, new=2),
        Event(Tag.MIGRATION, "*", "DISTRICT", "column 7Total added"),
        Event(Tag.OUTLIER, "609772", "ADDAMS", "flagged, not dropped", 40, "20210923"),
        Event(Tag.SCHOOL_ADDED, "400199", "NEW", "first seen"),
        Event(Tag.NEW_SEASON, "*", "DISTRICT", "closed into SY2122"),
    ]

    records = errata_records(events)

    assert [(r["kind"], r["school_id"], r["field"], r["old"], r["new"]) for r in records] == [
        ("correction", "609772", "season total", 3, 2),
        ("drift-repair", "610087", "gTotal", 1, 2),
        ("migration", "*", "", None, None),
    ]


def test_the_errata_table_is_every_applied_updates_records_in_order() -> None:
    first = entry("a", step="notified", as_of="2021-09-22", errata=errata_records([CORRECTION]))
    second = entry("b", step="notified", as_of="2021-09-23", errata=[])
    third = entry("c", as_of="2021-09-24", errata=errata_records([CORRECTION]))

    table = errata_table([first, second, third])

    assert list(table.columns) == ERRATA_COLUMNS
    assert table[["update_day", "update_id", "old", "new"]].values.tolist() == [
        ["2021-09-22", "a", 3, 2],
        ["2021-09-24", "c", 3, 2],
    ]
    assert str(table["old"].dtype) == "Int64"
    assert errata_table([]).columns.tolist() == ERRATA_COLUMNS


def test_a_history_folders_errata_name_the_file_they_came_from() -> None:
    table = errata_of_events([Event(Tag.MIGRATION, "*", "DISTRICT", "column 7Total added")], "", "read x.csv")
    assert table[["kind", "reason", "update_id"]].values.tolist() == [
        ["migration", "column 7Total added", "read x.csv"]
    ]


def test_the_package_describes_the_finished_updates_before_this_one_and_this_one() -> None:
    done = entry("a", step="notified")
    undone = entry("b", step="notified", rolled_back=True)
    crashed_earlier = entry("c", step="published")  # unfinished: resumed before any new update is claimed
    claiming = entry("d")
    ledger = Ledger([done, undone, crashed_earlier])

    assert [e.id for e in applied_through(ledger, claiming)] == ["a", "d"]
    # resuming c: the updates before it, then c itself, once
    assert [e.id for e in applied_through(ledger, crashed_earlier)] == ["a", "c"]


def test_provenance_names_each_updates_day_payload_and_run() -> None:
    table = provenance_table([entry("a", sha256="ff" * 32)])
    assert list(table.columns) == PROVENANCE_COLUMNS
    assert table.iloc[0].to_dict() == {
        "update_id": "a",
        "update_day": "2021-09-23",
        "fetched_at": "2021-09-23T18:35:00+00:00",
        "claimed_at": "2021-09-23T18:35:00+00:00",
        "source": "http://127.0.0.1/feed.csv",
        "raw_key": "raw/a.csv",
        "sha256": "ff" * 32,
        "flow_run": "run-a",
    }
