"""The "new cases" page and the subscribers' message."""

from __future__ import annotations

from datetime import date, datetime
from html.parser import HTMLParser

import pandas as pd
import pytest

from cps_covid.rules import labels, merge, render
from cps_covid.rules.schema import LATITUDE, LONGITUDE, SCHOOL, SCHOOL_ID

DAY = date(2021, 9, 23)


def day_cases(*rows: tuple[str, float, float, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[SCHOOL, LATITUDE, LONGITUDE, "cases"])


def changes(*rows: tuple[str, int]) -> pd.DataFrame:
    return pd.DataFrame({SCHOOL_ID: [f"60{n:04d}" for n in range(len(rows))], SCHOOL: [s for s, _ in rows]}).assign(
        new_cases=[n for _, n in rows]
    )


class Page(HTMLParser):
    """Text of <title>, <h1> and #summary, and every link with its text."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.links: list[tuple[str, str]] = []
        self.classes: list[str] = []
        self.forms: list[str] = []
        self.stylesheets: list[str] = []
        self._in: str | None = None
        self._href: str | None = None
        self.feed(body.decode("utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("title", "h1", "h2") or attrs.get("id") in ("summary", "corrections"):
            self._in = attrs.get("id") or tag
            self.text[self._in] = ""
        if tag == "a":
            self._href = attrs["href"]
            self.links.append((self._href, ""))
        if tag == "form":
            self.forms.append(attrs["action"])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.stylesheets.append(attrs["href"])
        if tag == "tr" and attrs.get("class"):
            self.classes.append(attrs["class"])

    def handle_endtag(self, tag):
        if tag in ("title", "h1", "h2", "p"):
            self._in = None
        if tag == "a":
            self._href = None

    def handle_data(self, data):
        if self._in:
            self.text[self._in] += data
        if self._href is not None:
            href, text = self.links[-1]
            self.links[-1] = (href, text + data)


def test_the_date_is_in_the_title_and_the_heading():
    page = Page(render.newcases_page(day_cases(("ADDAMS", 41.6987388, -87.53297604, 2)), DAY, "https://x.org"))
    assert page.text["title"] == "CPS Covid Tracker - Sep. 23, 2021"
    assert page.text["h1"] == "Chicago Public Schools* COVID-19 Case Tracker"
    assert page.text["h2"] == "Case data collected Sep. 23, 2021"
    assert page.text["summary"] == "2 new cases reported at 1 school on Sep. 23, 2021."


def test_the_page_has_the_sites_header_buttons_and_stylesheet_wherever_it_is_served():
    page = Page(render.newcases_page(day_cases(("ADDAMS", 41.69, -87.53, 2)), DAY, "https://cpscovid.com/"))
    assert page.forms == ["https://cpscovid.com/index.html", "https://cpscovid.com/historical/index.html"]
    assert "https://cpscovid.com/style.css" in page.stylesheets
    assert any("tailwind" in sheet for sheet in page.stylesheets)
    assert all(href.startswith("https://") for href, _ in page.links)  # an archived copy links the same


def test_school_links_use_underscores_and_coordinates():
    assert (
        render.school_href("https://cpscovid.com/", "ALBANY PARK", 41.97150444, -87.71060879)
        == "https://cpscovid.com/school.html?name=ALBANY_PARK&Lat=41.97150444&Long=-87.71060879"
    )
    body = render.newcases_page(
        day_cases(("ALBANY PARK", 41.97150444, -87.71060879, 1), ("AIR FORCE HIGH SCHOOL", 41.828, -87.633, 3)),
        DAY,
        "https://cpscovid.com/",
    )
    assert b'href="https://cpscovid.com/school.html?name=ALBANY_PARK&amp;Lat=41.97150444&amp;Long=-87.71060879"' in body
    assert Page(body).links[:2] == [
        (
            "https://cpscovid.com/school.html?name=AIR_FORCE_HIGH_SCHOOL&Lat=41.828&Long=-87.633",
            "AIR FORCE HIGH SCHOOL",
        ),
        ("https://cpscovid.com/school.html?name=ALBANY_PARK&Lat=41.97150444&Long=-87.71060879", "ALBANY PARK"),
    ]


def test_a_school_without_coordinates_links_without_them():
    assert (
        render.school_href("https://x.org", "SCHOOL 400200", float("nan"), float("nan"))
        == "https://x.org/school.html?name=SCHOOL_400200&Lat=&Long="
    )


def test_school_names_are_escaped():
    attack = "<script>alert(1)</script>"
    body = render.newcases_page(
        day_cases((attack, 41.88, -87.63, 1), ('O"HARE & <b>SONS</b>', 41.9, -87.7, 1)), DAY, "https://x.org"
    )
    assert b"<script>" not in body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert b"<b>" not in body
    assert b"O&#34;HARE &amp; &lt;b&gt;SONS&lt;/b&gt;" in body
    page = Page(body)
    assert (render.school_href("https://x.org", attack, 41.88, -87.63), attack) in page.links
    assert "name=%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in render.school_href("https://x.org", attack, 41.88, -87.63)


def test_the_site_url_is_escaped_too():
    body = render.newcases_page(day_cases(), DAY, 'https://x.org/"><script>')
    assert b"<script>" not in body
    assert b'action="https://x.org/&#34;&gt;&lt;script&gt;/index.html"' in body
    assert Page(body).text["summary"] == "0 new cases reported at 0 schools on Sep. 23, 2021."


def test_corrections_are_marked():
    body = render.newcases_page(
        day_cases(("ADDAMS", 41.69, -87.53, 3), ("BLAIR", 41.71, -87.68, -1)), DAY, "https://x.org"
    )
    page = Page(body)
    assert page.classes == ["correction"]
    assert page.text["corrections"] == "Corrections (the district removed cases): BLAIR."
    assert page.text["summary"] == "2 new cases reported at 2 schools on Sep. 23, 2021."


def test_the_date_label():
    assert labels.date_label(date(2021, 9, 3)) == "Sep. 03, 2021"


@pytest.mark.parametrize(("count", "expected"), [(1, "1 new case"), (0, "0 new cases"), (22, "22 new cases")])
def test_the_subject(count, expected):
    assert render.subject(count, DAY) == f"CPS COVID update: {expected} (Sep. 23, 2021)"


def test_the_subject_never_exceeds_100_characters():
    subject = render.subject(10**120, DAY)
    assert len(subject) == render.SUBJECT_LIMIT == 100
    assert subject.startswith("CPS COVID update: 1000")


def test_the_message_reports_the_update_then_the_day():
    text = render.message(
        changes(("ADDAMS", 2), ("AGASSIZ", 3), ("BLAIR", -1)),
        day_cases(("ADDAMS", 0, 0, 4), ("AGASSIZ", 0, 0, 3), ("BLAIR", 0, 0, -1), ("ZAPATA", 0, 0, 1)),
        DAY,
        datetime(2021, 9, 23, 16, 5),
        "https://cpscovid.com/",
        [merge.Event(merge.Tag.CORRECTION, "609690", "BLAIR", "season total went down by 1", -1, "9.23.21")],
    )
    assert text == (
        "cpscovid.com has detected new COVID-19 cases.\n"
        "\n"
        "Update: 04:05 PM, Sep. 23, 2021\n"
        "New cases: 5\n"
        "Schools affected: 2\n"
        "Corrections (cases removed by the district): BLAIR (-1)\n"
        "\n"
        "Cumulative cases reported Sep. 23, 2021\n"
        "New cases: 7\n"
        "Schools affected: 4\n"
        "\n"
        "View the list of cases at cpscovid.com/newcases.html\n"
    )


def test_the_message_without_corrections_has_no_corrections_line():
    text = render.message(
        changes(("ADDAMS", 1)), day_cases(("ADDAMS", 0, 0, 1)), DAY, datetime(2021, 9, 23, 9, 0), "http://x.org", []
    )
    assert "Corrections" not in text
    assert "Update: 09:00 AM, Sep. 23, 2021\n" in text
    assert text.endswith("View the list of cases at x.org/newcases.html\n")


def test_a_backfill_says_when_it_ran_apart_from_the_day_it_updates():
    ran = datetime(2026, 12, 1, 13, 54)
    assert render.update_time(DAY, ran) == "Sep. 23, 2021 (a backfill, fetched 01:54 PM, Dec. 01, 2026)"
    assert render.update_time(DAY, datetime(2021, 9, 23, 13, 54)) == "01:54 PM, Sep. 23, 2021"
    assert labels.arrival_time(DAY, ran) == "Dec. 01, 2026 13:54"
    assert labels.arrival_time(DAY, datetime(2021, 9, 23, 13, 50)) == "13:50"
    text = render.message(changes(("ADDAMS", 2)), day_cases(("ADDAMS", 41.69, -87.53, 2)), DAY, ran, "x", [])
    assert "Update: Sep. 23, 2021 (a backfill, fetched 01:54 PM, Dec. 01, 2026)\n" in text
