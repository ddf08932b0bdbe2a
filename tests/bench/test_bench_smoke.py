"""Every benchmark, on tiny sizes: they keep running and their results keep their shape.

No assertion here is about time: benchmarks measure, tests check. The figures
themselves are in ``bench/results.md`` (``make bench``).
"""

from __future__ import annotations

import json
import random
import stat
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from bench import container, flow_overhead, merge_vs_rows, row_reference, scale
from bench.__main__ import main
from cps_covid.rules import history, merge
from cps_covid.rules.schema import GTOTAL, LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID, WINDOWS, day_column

# --- part 1: the reference is an independent implementation, so it doubles as a check of the merge ----------


def random_case(rng: random.Random) -> tuple[pd.DataFrame, pd.DataFrame, date, pd.DataFrame, frozenset[str]]:
    """A small history (gap days, a carry-over, drift now and then) and a feed with new, dropped and lower totals."""
    ids = [str(100000 + i) for i in rng.sample(range(50), rng.randint(1, 8))]
    first = date(2021, 9, 1)
    days = [day_column(first + timedelta(days=o)) for o in sorted(rng.sample(range(12), rng.randint(1, 6)))]
    counts = {d: [rng.choice([0, 0, 0, 1, 2, 11]) for _ in ids] for d in days}
    frame = pd.DataFrame(
        {
            SCHOOL: [f"SCHOOL {i}" for i in ids],
            LATITUDE: [rng.choice([41.8, float("nan")]) for _ in ids],
            LONGITUDE: -87.6,
            SCHOOL_ID: ids,
            **{w: 0 for w in WINDOWS},
            GTOTAL: 0,
            "preSY2122": [rng.randint(0, 3) for _ in ids],
            **counts,
        }
    )
    frame[GTOTAL] = frame[days].sum(axis=1) + (rng.random() < 0.3)
    integers = [*WINDOWS, GTOTAL, "preSY2122", *days]
    frame = frame.astype({c: "int64" for c in integers} | {SCHOOL: "str", SCHOOL_ID: "str"})
    reported = rng.sample(ids, rng.randint(0, len(ids))) + ["400199", "400200"][: rng.randint(0, 2)]
    totals = pd.DataFrame(
        {SCHOOL_ID: reported, "season_total": [rng.randint(0, 9) for _ in reported], SCHOOL: "named - school"}
    ).astype({SCHOOL_ID: "str", "season_total": "int64", SCHOOL: "str"})
    profiles = pd.DataFrame({SCHOOL_ID: ["400199"], SCHOOL: ["LAKE VIEW - STEM"], LATITUDE: [41.9], LONGITUDE: [-87.6]})
    last = first + timedelta(days=int(days[-1][-2:]) - 1)
    as_of = rng.choice([last, last + timedelta(days=1), last + timedelta(days=3)])
    ignore = frozenset(rng.sample(reported, min(1, len(reported))))
    return frame, totals, as_of, profiles, ignore


@pytest.mark.parametrize("seed", range(40))
def test_row_reference_and_vectorised_merge_agree(seed: int) -> None:
    history_frame, totals, as_of, profiles, ignore = random_case(random.Random(seed))
    ours = merge.apply_feed(history_frame, totals, as_of, profiles=profiles, ignore_ids=ignore)
    ours_tables = (ours, merge.district_totals(ours.schools), merge.transposed(ours.schools))
    reference = row_reference.merge_by_rows(history_frame, totals, as_of, profiles=profiles, ignore_ids=ignore)

    merge_vs_rows.check_equal(ours_tables, reference)


@pytest.mark.slow  # a whole season, a subprocess or a benchmark: not in make check
def test_merge_vs_rows_on_the_real_history() -> None:
    section = merge_vs_rows.run(quick=True)

    assert section.data["equal"] is True
    assert set(section.data["seconds"]) == {"rows_merge", "merge", "rows", "vectorised", "floor", "job", "pandas"}
    assert all(figures["runs"] >= 1 for figures in section.data["seconds"].values())
    assert section.data["speedup"] > 0 and section.data["job_over_floor"] > 0
    assert section.data["speedup_with_transposition"] > 0
    assert [t.met is not None for t in section.targets] == [True, True]
    assert "518 schools, 295 day columns" in section.title


# --- part 2 ------------------------------------------------------------------------------------------------


@pytest.mark.slow  # a whole season, a subprocess or a benchmark: not in make check
def test_scale_on_tiny_histories(tmp_path: Path) -> None:
    section = scale.run(sizes=[(30, 20), (60, 40)], data=tmp_path)

    assert [r["schools x days"] for r in section.rows] == ["30 x 20", "60 x 40"]
    for label in ("30 x 20", "60 x 40"):
        point = section.data["points"][label]
        assert point["project"]["schools_bytes"] > 0 and point["project"]["transposed_bytes"] > 0
        assert point["project_peak"] > 0 and point["floor_peak"] > 0
        assert point["floor"]["engine"] in ("c", "pyarrow")
        assert point["project"]["events"] >= 3  # the new schools of the synthetic feed
    assert isinstance(section.data["exponent"], float)
    assert section.targets[0].met is None  # 100,000 x 1,000 was not among the sizes


def test_scale_skips_a_point_that_cannot_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scale, "available_memory", lambda: 1)
    section = scale.run(sizes=[(20, 10), (40, 10)], data=tmp_path)

    assert "project" in section.data["points"]["20 x 10"]
    assert section.data["points"]["40 x 10"]["skipped"].startswith("skipped: predicted peak")


def test_synthetic_history_is_read_and_merged_like_the_real_one(tmp_path: Path) -> None:
    from bench.synthetic import generate

    made = generate(tmp_path, 25, 30)
    schools = history.typed_schools(history.read_table(made.history.read_bytes(), "history.csv"))
    checks = history.school_checks(schools)

    assert (checks["day_sum"] == checks[GTOTAL]).all()
    assert history.csv_bytes(schools) == made.history.read_bytes()
    assert len(history.count_columns(schools)) == 5 + 30


def test_exponent_of_a_straight_line() -> None:
    assert scale.exponent([(10, 1.0), (100, 10.0), (1000, 100.0)]) == pytest.approx(1.0)
    assert scale.exponent([(10, 1.0)]) is None


# --- part 4 ------------------------------------------------------------------------------------------------


def test_container_without_docker_says_why(tmp_path: Path) -> None:
    section = container.run(docker=str(tmp_path / "no-docker"))

    assert section.data == {"built": False, "reason": f"{tmp_path / 'no-docker'} is not installed"}
    assert section.rows[0]["what"] == "cps-covid-etl:latest: image not built"
    assert [t.met for t in section.targets] == [None]


def test_container_without_the_image_says_why(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path, inspect_error="Error response from daemon: No such image: cps-covid-etl:latest")
    section = container.run(docker=str(docker))

    assert section.data["reason"] == "Error response from daemon: No such image: cps-covid-etl:latest"


def fake_docker(folder: Path, inspect_error: str = "") -> Path:
    """A ``docker`` that knows one image and runs ``docker run ... IMAGE python -c SCRIPT`` here, with the -e flags."""
    script = folder / "docker"
    script.write_text(
        f"""#!{sys.executable}
import json, os, subprocess, sys
args = sys.argv[1:]
if args[:2] == ["image", "inspect"]:
    if {inspect_error!r}:
        print({inspect_error!r}, file=sys.stderr)
        sys.exit(1)
    print(json.dumps([{{"Id": "sha256:fake", "Config": {{}}}}]))
    sys.exit(0)
env = dict(os.environ)
rest = args[1:]
while rest and rest[0].startswith("-"):
    flag = rest.pop(0)
    if flag == "-e":
        key, _, value = rest.pop(0).partition("=")
        env[key] = value
    elif flag == "--network":
        rest.pop(0)
image, command = rest[0], rest[1:]
command[0] = {sys.executable!r}
sys.exit(subprocess.run(command, env=env).returncode)
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


# --- parts 3 and 4 with a Prefect API: slow ---------------------------------------------------------------------


@pytest.mark.slow
def test_flow_overhead_on_the_embedded_defaults(prefect_api: str) -> None:
    section = flow_overhead.run(quick=True, api_url=prefect_api)

    kinds = [r["kind"] for r in section.data["runs"]]
    assert kinds == ["orchestrated", "plain"]
    orchestrated, plain = section.data["runs"]
    called = [name for name, _ in orchestrated["calls"]]
    assert called[0] == "Fetch the district's feed"
    assert {"Merge the feed into the history", "Publish the update"} <= set(called)
    assert [name for name, _ in plain["calls"]] == called  # the same tasks, called as plain functions
    assert {t["name"] for t in orchestrated["task_runs"]} == set(called)
    assert section.data["imports_s"] > 0 and section.data["process_start_s"] > 0
    assert section.data["breakdown"], "the -X importtime account is empty"
    labels = [r["what"] for r in section.rows]
    assert "Prefect overhead (warm - plain)" in labels and "publish (S3 writes + invalidation + SNS)" in labels
    assert len(section.targets) == 2 and all(t.met is not None for t in section.targets)


@pytest.mark.slow
def test_container_run_is_split_up(prefect_api: str, tmp_path: Path) -> None:
    section = container.run(docker=str(fake_docker(tmp_path)), api_url=prefect_api)

    assert section.data["state"] == "Completed", section.rows
    assert [r["what"].split(" (")[0] for r in section.rows] == [
        "image start",
        "imports",
        "run",
        "exit",
        "cold container start to a Completed run",
    ]
    assert [t.met for t in section.targets] == [True]


# --- the command -------------------------------------------------------------------------------------------


@pytest.mark.slow  # a whole season, a subprocess or a benchmark: not in make check
def test_python_m_bench_quick_writes_the_results(tmp_path: Path) -> None:
    out, raw = tmp_path / "results.md", tmp_path / "results.json"
    status = main(
        [
            "--quick",
            "--only",
            "merge_vs_rows,scale,container",
            "--sizes",
            "20x10,40x20",
            "--data",
            str(tmp_path / "synthetic"),
            "--docker",
            str(tmp_path / "no-docker"),
            "--out",
            str(out),
            "--json",
            str(raw),
        ]
    )

    assert status == 0
    text = out.read_text()
    assert text.startswith("# Figures\n")
    for heading in ("### Targets", "### 1. Merge on the real history", "### 2. Scale", "### 3. Cold container start"):
        assert heading in text
    assert "| cpu |" in text and "| commit |" in text
    assert "image not built" in text
    assert set(json.loads(raw.read_text())["sections"]) == {"merge_vs_rows", "scale", "container"}


def test_a_new_run_replaces_the_last_one_and_keeps_the_dated_figures() -> None:
    from bench.__main__ import MARKER, into_results

    first = into_results(None, "## The last benchmark run\n\nrun 1\n")
    assert first.startswith("# Figures\n") and first.endswith("run 1\n")
    kept = first.replace("# Figures\n", "# Figures\n\n| 2026-12-05 | a figure |\n")
    second = into_results(kept, "## The last benchmark run\n\nrun 2\n")
    assert "| 2026-12-05 | a figure |" in second
    assert "run 1" not in second and second.endswith("run 2\n")
    assert second.count(MARKER) == 1


# --- part 6: the freshness benchmark's arithmetic (its run needs minutes of real time: make bench only) -------


def test_the_cron_only_latency_waits_for_the_next_half_hour_and_the_reduction_counts_the_backstop() -> None:
    from datetime import UTC, datetime

    from bench import freshness

    at = datetime(2026, 12, 6, 13, 29, 59, tzinfo=UTC)
    assert freshness.next_slot(at) == datetime(2026, 12, 6, 13, 30, tzinfo=UTC)
    assert freshness.next_slot(at.replace(minute=30, second=0)) == datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    assert freshness.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5 and freshness.percentile([5.0], 0.95) == 5.0
    assert freshness.reduction(1.0, 2) == 1 - 6 / 48  # 2 triggered + 4 backstop runs against 48
    assert round(freshness.reduction(1.0, 5), 4) == round(1 - 9 / 48, 4)
    body = freshness.payload(3)
    assert body.startswith(freshness.FEED_FILE.read_bytes()) and body.count(b'"09/23/2021"') >= 3
