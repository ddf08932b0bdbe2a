"""Part 1: the merge on the real history (518 schools, 295 day columns) against the row-by-row reference.

Same inputs for both: the bundled 2021-09-22 history, the bundled 2021-09-23
case list, the school profile of the one new school and the default ignored
ids. Both produce the three published tables; they are checked equal (frames,
changes, events and the CSV bytes) before anything is timed.

Timed, in alternation so load from other processes falls on all alike:

- ``rows``: ``bench.row_reference.merge_by_rows`` (per-school table, district
  totals, transposed table);
- ``vectorised``: ``merge.apply_feed`` + ``merge.district_totals`` + ``merge.transposed``;
- ``floor``: only reading the two input CSVs and writing the three output
  CSVs, with the project's reader and writer (``history.read_table``,
  ``history.csv_bytes``, ``history.transposed_csv_bytes``);
- ``job``: what the merge step of a run does without validation: read,
  type, merge, compute the totals and write the three CSVs.
"""

from __future__ import annotations

import io
import json
from datetime import date

import pandas as pd

from bench.common import FEEDS_DIR, HISTORY_DIR, Section, Target, interleaved, ratio, seconds
from bench.row_reference import apply_feed_by_rows, district_totals_by_rows, merge_by_rows
from cps_covid.rules import history, merge
from cps_covid.rules.feed import parse_feed
from cps_covid.rules.inputs import profiles_frame
from cps_covid.settings import DEFAULT_IGNORE_IDS

AS_OF = date(2021, 9, 23)
TARGET_SPEEDUP = 100
TARGET_FLOOR = 2.0


def inputs() -> dict:
    schools_csv = (HISTORY_DIR / "allCpsCovidData.csv").read_bytes()
    totals_csv = (HISTORY_DIR / "CPStotals.csv").read_bytes()
    parsed = parse_feed((FEEDS_DIR / "2021-09-23-cases.csv").read_bytes(), "2021-09-23-cases.csv")
    totals = merge.season_totals_from_rows(parsed.rows.assign(cases=parsed.rows["cases_number"].astype("int64")))
    found = [
        p | {"CPS_School_ID": str(p["SchoolID"])} for p in json.loads((FEEDS_DIR / "school-profiles.json").read_text())
    ]
    return {
        "schools_csv": schools_csv,
        "totals_csv": totals_csv,
        "schools": history.typed_schools(history.read_table(schools_csv, "allCpsCovidData.csv")),
        "totals": totals,
        "profiles": profiles_frame(found),
        "ignore_ids": DEFAULT_IGNORE_IDS,
    }


def _applied(data: dict) -> merge.MergeResult:
    return merge.apply_feed(
        data["schools"], data["totals"], AS_OF, profiles=data["profiles"], ignore_ids=data["ignore_ids"]
    )


def vectorised(data: dict) -> tuple[merge.MergeResult, pd.DataFrame, pd.DataFrame]:
    result = _applied(data)
    return result, merge.district_totals(result.schools), merge.transposed(result.schools)


def by_rows(data: dict) -> tuple[merge.MergeResult, pd.DataFrame, pd.DataFrame]:
    return merge_by_rows(
        data["schools"], data["totals"], AS_OF, profiles=data["profiles"], ignore_ids=data["ignore_ids"]
    )


def merge_only(data: dict) -> pd.DataFrame:
    """The merge proper (cells, windows, district totals), without the transposition both do with pandas."""
    return merge.district_totals(_applied(data).schools)


def merge_only_by_rows(data: dict) -> pd.DataFrame:
    result = apply_feed_by_rows(
        data["schools"], data["totals"], AS_OF, profiles=data["profiles"], ignore_ids=data["ignore_ids"]
    )
    return district_totals_by_rows(result.schools)


def check_equal(ours: tuple, reference: tuple) -> None:
    """Both implementations produced the same tables, changes, events and bytes (AssertionError if not)."""
    (result, totals, flipped), (ref_result, ref_totals, ref_flipped) = ours, reference
    pd.testing.assert_frame_equal(result.schools, ref_result.schools, check_exact=True)
    pd.testing.assert_frame_equal(result.changes, ref_result.changes, check_exact=True)
    assert [str(e) for e in result.events] == [str(e) for e in ref_result.events], "events differ"
    pd.testing.assert_frame_equal(totals, ref_totals, check_exact=True)
    assert history.csv_bytes(flipped) == history.csv_bytes(ref_flipped), "transposed tables differ"
    assert history.csv_bytes(result.schools) == history.csv_bytes(ref_result.schools)
    assert history.transposed_csv_bytes(result.schools) == history.csv_bytes(ref_flipped)


def run(*, quick: bool = False) -> Section:
    data = inputs()
    ours, reference = vectorised(data), by_rows(data)
    check_equal(ours, reference)
    outputs = {"schools": ours[0].schools, "totals": ours[1]}

    def floor() -> None:
        history.read_table(data["schools_csv"], "allCpsCovidData.csv")
        history.read_table(data["totals_csv"], "CPStotals.csv")
        history.csv_bytes(outputs["schools"])
        history.csv_bytes(outputs["totals"])
        history.transposed_csv_bytes(outputs["schools"])

    def job() -> None:
        schools = history.typed_schools(history.read_table(data["schools_csv"], "allCpsCovidData.csv"))
        history.read_table(data["totals_csv"], "CPStotals.csv")
        result = merge.apply_feed(
            schools, data["totals"], AS_OF, profiles=data["profiles"], ignore_ids=data["ignore_ids"]
        )
        history.csv_bytes(result.schools)
        history.csv_bytes(merge.district_totals(result.schools))
        history.transposed_csv_bytes(result.schools)

    def pandas_floor() -> None:
        read = pd.read_csv(io.BytesIO(data["schools_csv"]), dtype={"CPS_School_ID": "str", "School": "str"})
        pd.read_csv(io.BytesIO(data["totals_csv"]))
        read.to_csv(index=False)
        outputs["totals"].to_csv(index=False)
        merge.transposed(outputs["schools"]).to_csv(index=False)

    rounds = 1 if quick else 7
    repeats = (
        {"vectorised": 3, "merge": 3, "floor": 3, "job": 3, "pandas": 3}
        if quick
        else {k: 15 for k in ("vectorised", "merge", "floor", "job", "pandas")}
    )
    timings = interleaved(
        {
            "rows_merge": lambda: merge_only_by_rows(data),
            "merge": lambda: merge_only(data),
            "rows": lambda: by_rows(data),
            "vectorised": lambda: vectorised(data),
            "floor": floor,
            "job": job,
            "pandas": pandas_floor,
        },
        rounds,
        repeats,
    )
    speedup = timings["rows_merge"].median / timings["merge"].median
    with_transposition = timings["rows"].median / timings["vectorised"].median
    over_floor = timings["job"].median / timings["floor"].median
    section = Section(
        "merge_vs_rows",
        f"Merge on the real history ({len(data['schools'])} schools, "
        f"{len(history.count_columns(data['schools'])) - 5} day columns), as of {AS_OF}",
        ["what", "median", "best", "runs"],
    )
    labels = {
        "rows_merge": "row-by-row reference: merge + district totals",
        "merge": "vectorised: apply_feed + district_totals",
        "rows": "row-by-row reference (merge + totals + transposed)",
        "vectorised": "vectorised: apply_feed + district_totals + transposed",
        "floor": "floor: read 2 CSVs + write 3 CSVs (project reader/writer)",
        "job": "merge job: read + type + merge + totals + write 3 CSVs",
        "pandas": "for reference: the same read + write with plain pandas",
    }
    for name, label in labels.items():
        timing = timings[name]
        section.rows.append(
            {"what": label, "median": seconds(timing.median), "best": seconds(timing.best), "runs": len(timing.runs)}
        )
    section.rows.append({"what": "rows / vectorised: the merge", "median": ratio(speedup), "best": "", "runs": ""})
    section.rows.append(
        {
            "what": "rows / vectorised: with the transposition (DataFrame.transpose in both)",
            "median": ratio(with_transposition),
            "best": "",
            "runs": "",
        }
    )
    section.rows.append({"what": "merge job / floor", "median": ratio(over_floor), "best": "", "runs": ""})
    section.rows.append(
        {
            "what": "vectorised / floor",
            "median": ratio(timings["vectorised"].median / timings["floor"].median),
            "best": "",
            "runs": "",
        }
    )
    section.targets = [
        Target(
            f"merge on real data at least {TARGET_SPEEDUP}x faster than row by row",
            ratio(speedup),
            speedup >= TARGET_SPEEDUP,
        ),
        Target(
            f"merge job within {TARGET_FLOOR:g}x the read+write floor", ratio(over_floor), over_floor <= TARGET_FLOOR
        ),
    ]
    section.notes = [
        "Outputs checked equal before timing: per-school table, changes, events, district totals, "
        "transposed table and the CSV bytes of all three files.",
        "Ratios are of medians measured in alternation in this same run. Validation (Great Expectations) is "
        "not part of the merge and is not timed here.",
        "The target compares the merge proper (set cells, recompute windows, district totals), as the old "
        "process is described; newFormatTest.csv is a pandas DataFrame.transpose in both implementations, "
        "so its few milliseconds are shown in the second ratio, not in the target's.",
    ]
    section.data = {
        "equal": True,
        "speedup": speedup,
        "speedup_with_transposition": with_transposition,
        "job_over_floor": over_floor,
        "seconds": {name: {"median": t.median, "best": t.best, "runs": len(t.runs)} for name, t in timings.items()},
    }
    return section
