"""The ``cps-covid`` console script as a user runs it: separate processes, real services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("cps-covid")


def cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ), cwd=ROOT
    )


def test_run_applies_a_feed_through_the_prefect_server(prefect_api, aws, feeds) -> None:
    env = dict(os.environ) | {"PREFECT_API_URL": prefect_api}
    done = cli("run", "--as-of", "2021-09-23", "--source", feeds.url("/feed.csv"), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "22 new case(s) at 13 school(s) for 2021-09-23" in done.stdout
    assert "wrote newcases.html (version " in done.stdout
    assert len(aws.sent_notifications()) == 1


def test_run_dry_run_publishes_nothing(prefect_api, aws, feeds) -> None:
    env = dict(os.environ) | {"PREFECT_API_URL": prefect_api}
    done = cli("run", "--as-of", "2021-09-23", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "would write newcases.html" in done.stdout
    assert aws.sent_notifications() == []


def test_run_without_settings_names_what_is_missing(prefect_api) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPS_COVID_")} | {"PREFECT_API_URL": prefect_api}
    done = cli("run", "--as-of", "2021-09-23", env=env)
    assert done.returncode != 0
    assert "CPS_COVID_BUCKET" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("argument", ["--as-of=2021-13-01", "--as-of=yesterday"])
def test_bad_dates_are_refused(argument: str) -> None:
    done = cli("merge", "--history", "x", "--fresh", "y", "--out", "z", argument)
    assert done.returncode == 2 and "is not a date like 2021-09-23" in done.stderr


def test_demo_runs_the_flow_on_embedded_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "CPS_COVID_"))}
    out = tmp_path / "site"
    done = cli("demo", "--out", str(out), "--prefect-home", str(tmp_path / "prefect"), env=env, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "22 new case(s) at 13 school(s) for 2021-09-23" in done.stdout
    assert "CloudFront invalidation " in done.stdout
    assert "Subject: CPS COVID update: 22 new cases (Sep. 23, 2021)" in done.stdout
    published = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert published == ["data/CPStotals.csv", "data/allCpsCovidData.csv", "data/newFormatTest.csv", "newcases.html"]
    assert "20210923" in (out / "data/allCpsCovidData.csv").read_text().splitlines()[0]
