"""The "new cases" page as a browser shows it: Debian's headless Chromium, not string matching."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from cps_covid.rules import render

pytestmark = pytest.mark.slow  # a browser or the CLI in a subprocess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = "<script>document.title='PWNED'</script>"


@pytest.fixture
def page(tmp_path: Path) -> Path:
    day_cases = pd.DataFrame(
        {
            "School": ["ADDAMS", HOSTILE, "AMUNDSEN HIGH SCHOOL"],
            "Latitude": [41.6987388, 41.9, 41.97506726],
            "Longitude": [-87.53297604, -87.6, -87.67948421],
            "CPS_School_ID": ["609772", "400199", "609695"],
            "cases": [2, 1, 3],
        }
    )
    path = tmp_path / "newcases.html"
    path.write_bytes(render.newcases_page(day_cases, date(2021, 9, 23), "https://cpscovid.com"))
    return path


def chromium(*args: str, user_data: Path) -> str:
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={user_data}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_page_renders_rows_and_shows_script_names_as_text(page: Path, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", page.as_uri(), user_data=tmp_path / "profile")

    assert "<title>CPS Covid Tracker - Sep. 23, 2021</title>" in dom
    assert "PWNED" not in dom.split("</title>")[0]
    assert dom.count('<tr><td><a href="https://cpscovid.com/school.html?name=') == 3
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;</a>" in dom
    assert (
        'href="https://cpscovid.com/school.html?name=AMUNDSEN_HIGH_SCHOOL&amp;Lat=41.97506726&amp;Long=-87.67948421"'
        in dom
    )
    assert "Case data collected Sep. 23, 2021</h2>" in dom


def test_page_screenshot_is_a_picture(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "newcases.png"
    chromium(f"--screenshot={shot}", "--window-size=900,700", page.as_uri(), user_data=tmp_path / "profile")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
