"""``cps-covid merge``: one feed applied to a folder, as a subprocess and in-process."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cli import main as cli
from cps_covid.operations.offline import merge_folder

WRITTEN = ["CPStotals.csv", "allCpsCovidData.csv", "newFormatTest.csv", "newcases.html", "notification.txt"]
SUBJECT = "Subject: CPS COVID update: 22 new cases (Sep. 23, 2021)\n\n"


def merge_args(history_dir: Path, fresh: Path, out: Path, *extra: str) -> list[str]:
    paths = ["--history", str(history_dir), "--fresh", str(fresh), "--out", str(out)]
    return ["merge", *paths, "--as-of", "2021-09-23", *extra]


def check_outputs(out: Path) -> None:
    """What a merge of the bundled 2021-09-23 feed into the 2021-09-22 history writes."""
    assert sorted(p.name for p in out.iterdir()) == WRITTEN
    schools = pd.read_csv(out / "allCpsCovidData.csv", dtype={"CPS_School_ID": str})
    assert len(schools) == 518 + 1
    assert schools.columns[-1] == "20210923"
    assert schools["20210923"].sum() == 22
    by_id = schools.set_index("CPS_School_ID")
    assert by_id.loc["400199", ["School", "20210923", "gTotal"]].tolist() == ["LAKE VIEW-STEM ACADEMY", 2, 2]
    assert by_id.loc["610087", ["gTotal", "preSY2122"]].tolist() == [2, 2]
    assert "610377" not in by_id.index  # the network office is on the default ignore list
    totals = (out / "CPStotals.csv").read_bytes()
    assert totals.endswith(
        b"\n20210922,74,2505,74,10.57142857,224,16\n20210923,22,2527,96,13.71428571,246,17.57142857\n"
    )
    transposed = (out / "newFormatTest.csv").read_text().splitlines()
    assert transposed[0].startswith("School,ADMINISTRATIVE,ADDAMS,")
    assert ",LAKE VIEW HIGH SCHOOL,LAKE VIEW-STEM ACADEMY,LANE TECH HIGH SCHOOL," in transposed[0]  # by name
    assert transposed[-1].startswith("20210923,0,2,")
    page = (out / "newcases.html").read_text()
    assert "Case data collected Sep. 23, 2021</h2>" in page
    assert "22 new cases reported at 13 schools on Sep. 23, 2021." in page
    notification = (out / "notification.txt").read_text()
    assert notification.startswith(SUBJECT + "cpscovid.com has detected new COVID-19 cases.\n")
    assert "New cases: 22\nSchools affected: 13\n" in notification


def one_paragraph(text: str) -> str:
    assert text.strip(), "nothing on stderr"
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) == 1, text
    return text.strip()


# --- as a command ----------------------------------------------------------------------------------


def run_command(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    paths = [str(repo_root), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow  # a whole season, a subprocess or a benchmark: not in make check
def test_the_command_merges_the_bundled_feed(repo_root, history_dir, feed_dir, tmp_path):
    out = tmp_path / "out"
    done = run_command(
        repo_root,
        *merge_args(history_dir, feed_dir / "2021-09-23-cases.csv", out),
        "--profiles",
        str(feed_dir / "school-profiles.json"),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:-1] == [
        f"22 new case(s) at 13 school(s); wrote 4 file(s) to {out}",
        "  [drift-repair] BLAIR (610087): day columns sum to 2 but gTotal was 1; gTotal set to 2 "
        "and preSY2122 from 1 to 2, season total unchanged",
        "  [school-added] LAKE VIEW-STEM ACADEMY (400199): first seen in the feed, added from its school profile",
        f"  warning: {history_dir}/allCpsCovidData.csv: expect_column_pair_values_to_be_equal on gTotal, day_sum "
        "failed (gTotal equals the sum of its day columns (drift is repaired on the carry-over and reported)): "
        "1 unexpected value(s), e.g. row 38: gTotal=1, CPS_School_ID='610087', School='BLAIR', day_sum=2",
        f"  warning: {history_dir}/CPStotals.csv: expect_column_pair_values_to_be_equal on daily, recomputed_daily "
        "failed (CPStotals daily equals the schools' day column (the old process drifted; it is recomputed)): "
        "2 unexpected value(s), e.g. row 269: daily=42, date=20210826, recomputed_daily=43; row 296: daily=0, "
        "date=20210922, recomputed_daily=74",
    ]
    assert done.stdout.splitlines()[-1].startswith(f"  warning: {history_dir}/CPStotals.csv: ")
    assert "row 269: running=2017, date=20210826, recomputed_running=2018" in done.stdout.splitlines()[-1]
    assert "Traceback" not in done.stderr
    check_outputs(out)


def test_the_command_refuses_an_error_page_and_writes_nothing(repo_root, history_dir, tmp_path):
    fresh = tmp_path / "feed.csv"
    fresh.write_bytes(b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>\n")
    out = tmp_path / "out"

    done = run_command(repo_root, *merge_args(history_dir, fresh, out))

    assert done.returncode == 2
    message = one_paragraph(done.stderr)
    assert message.startswith(f"cps-covid merge: {fresh}: an HTML/XML page, not a feed")
    assert done.stdout == ""
    assert not out.exists()


# --- in-process ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("feed", ["2021-09-23-cases.csv", "2021-09-23-health-api.json"])
def test_main_merges_either_format(history_dir, feed_dir, tmp_path, capsys, feed):
    out = tmp_path / "out"
    code = cli.main(merge_args(history_dir, feed_dir / feed, out, "--profiles", str(feed_dir / "school-profiles.json")))
    captured = capsys.readouterr()

    assert code == 0, captured.err
    assert captured.out.startswith(f"22 new case(s) at 13 school(s); wrote 4 file(s) to {out}\n")
    assert captured.err == ""
    check_outputs(out)


def test_both_formats_publish_the_same_bytes(history_dir, feed_dir, tmp_path):
    outs = []
    for feed in ("2021-09-23-cases.csv", "2021-09-23-health-api.json"):
        out = tmp_path / feed
        merge_folder(
            history_dir,
            feed_dir / feed,
            pd.Timestamp("2021-09-23").date(),
            out,
            ignore_ids=frozenset({"610377"}),
            profiles=feed_dir / "school-profiles.json",
        )
        outs.append(out)
    for name in WRITTEN[:4]:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_an_unprofiled_id_is_kept_when_not_ignored(history_dir, feed_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(merge_args(history_dir, feed_dir / "2021-09-23-cases.csv", out, "--ignore", ""))
    captured = capsys.readouterr()

    assert code == 0, captured.err
    assert "23 new case(s) at 14 school(s)" in captured.out
    assert "[school-added-without-profile] NETWORK OFFICE (610377): no school profile found" in captured.out
    assert "[school-added-without-profile] LAKE VIEW-STEM ACADEMY (400199)" in captured.out  # no --profiles
    schools = pd.read_csv(out / "allCpsCovidData.csv", dtype={"CPS_School_ID": str}).set_index("CPS_School_ID")
    assert schools.loc["610377", "School"] == "NETWORK OFFICE"
    assert schools.loc["610377", ["Latitude", "Longitude"]].isna().all()
    assert schools.loc["400199", "School"] == "LAKE VIEW-STEM ACADEMY"  # the feed's name, as profile names are


def bad_id_feed(path: Path) -> Path:
    path.write_text(
        '"Result Date","CPS School ID","School","Role"\n'
        '"09/23/2021","609772","ADDAMS","Student"\n'
        '"09/23/2021","12345","?","Adult"\n'
    )
    return path


def truncated_feed(path: Path) -> Path:
    path.write_text('"Result Date","CPS School ID","School","Role"\n"09/23/2021","6097')
    return path


def broken_history(history_dir: Path, path: Path) -> Path:
    path.mkdir()
    shutil.copy(history_dir / "CPStotals.csv", path / "CPStotals.csv")
    schools = pd.read_csv(history_dir / "allCpsCovidData.csv", dtype=str, keep_default_na=False)
    schools.loc[1, "20210915"] = "2 cases"
    schools.to_csv(path / "allCpsCovidData.csv", index=False)
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(
            lambda hist, feeds, tmp: (hist, bad_id_feed(tmp / "feed.csv")),
            [
                "validation failed, nothing was written",
                "feed.csv: expect_column_values_to_match_regex on CPS_School_ID",
                "row 3: CPS_School_ID='12345'",
            ],
            id="invalid-id",
        ),
        pytest.param(
            lambda hist, feeds, tmp: (hist, truncated_feed(tmp / "feed.csv")),
            ["feed.csv: malformed CSV near line 2 (unexpected end of data); the payload may be truncated"],
            id="truncated",
        ),
        pytest.param(
            lambda hist, feeds, tmp: (hist, tmp / "missing.json"),
            ["missing.json: cannot be read (No such file or directory)"],
            id="missing-feed",
        ),
        pytest.param(
            lambda hist, feeds, tmp: (broken_history(hist, tmp / "history"), feeds / "2021-09-23-cases.csv"),
            [
                "allCpsCovidData.csv: expect_column_values_to_match_regex on value",
                "row 3: value='2 cases', column='20210915'",
            ],
            id="broken-history",
        ),
    ],
)
@pytest.mark.parametrize("out_exists", [False, True], ids=["new-out", "empty-out"])
def test_main_refuses_bad_input_with_one_paragraph_and_writes_nothing(
    history_dir, feed_dir, tmp_path, capsys, make, expected, out_exists
):
    hist, fresh = make(history_dir, feed_dir, tmp_path)
    out = tmp_path / "out"
    if out_exists:
        out.mkdir()

    code = cli.main(merge_args(hist, fresh, out))
    captured = capsys.readouterr()

    assert code == 2
    message = one_paragraph(captured.err)
    assert message.startswith("cps-covid merge: ")
    for part in expected:
        assert part in message
    assert captured.out == ""
    assert out.exists() is out_exists
    if out_exists:
        assert list(out.iterdir()) == []


def test_main_refuses_a_date_that_is_not_one(history_dir, feed_dir, tmp_path, capsys):
    args = merge_args(history_dir, feed_dir / "2021-09-23-cases.csv", tmp_path / "out")
    args[args.index("--as-of") + 1] = "23/09/2021"
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    assert exited.value.code == 2
    assert "'23/09/2021' is not a date like 2021-09-23" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_merge_folder_returns_the_publication(history_dir, feed_dir, tmp_path):
    out = tmp_path / "nested" / "out"
    publication = merge_folder(
        history_dir, feed_dir / "2021-09-23-health-api.json", pd.Timestamp("2021-09-23").date(), out
    )
    assert publication.notifies
    assert publication.result.net_cases == 22  # no profile given: the new school is still added and counted
    assert {e.tag for e in publication.result.events} == {"drift-repair", "school-added-without-profile"}
    assert (out / "allCpsCovidData.csv").read_bytes() == publication.objects["data/allCpsCovidData.csv"][0]
    frame = pd.read_csv(io.BytesIO(publication.objects["data/allCpsCovidData.csv"][0]), dtype={"CPS_School_ID": str})
    added = frame.set_index("CPS_School_ID").loc["400199"]
    assert (added["School"], added["20210923"]) == ("LAKE VIEW-STEM ACADEMY", 2)  # its name from the feed
    assert pd.isna(added["Latitude"])
