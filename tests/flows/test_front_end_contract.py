"""What both flows publish, read the way the dashboard's front end reads it (misterjacko/CPS-COVID-FE).

The front end reads ``allCpsCovidData.csv`` by column name (the map: Papa Parse
with a header row), ``newFormatTest.csv`` by row position (the school page: d3
rows, ``data[i].School`` the former column name, ``data[i][school]`` the value),
``CPStotals.csv`` by name, the archive calendar's month from
``historical/YYYY-MM.json``, and follows the links of ``newcases.html`` and of
every archived page. Here the demo's run is repeated (case flow, then the
vaccination flow, for 2021-09-23 over the real 2021-09-22 history) and every one
of those reads is checked.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import urllib.request
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cps_covid.rules import cache_control
from flows.update import run_update
from flows.vaccination import vaccination_update
from local.aws_emulator import provision, seed_history
from local.feed_server import FeedServer, Route

pytestmark = pytest.mark.usefixtures("prefect_api")

ROOT = Path(__file__).resolve().parents[2]
FEEDS = ROOT / "data/feeds"
HISTORY = ROOT / "data/history-2021-09-22"
SITE = "https://cpscovid.com"
AS_OF = date(2021, 9, 23)
FIRST_COLUMNS = [
    "School",
    "Latitude",
    "Longitude",
    "CPS_School_ID",
    "Student_Count",
    "Vax_Complete",
    "Vax_First_Dose",
    "7Total",
    "14Total",
    "21Total",
    "gTotal",
    "preSY2122",
]


@pytest.fixture(scope="module")
def site(moto_endpoint: str) -> dict[str, tuple[bytes, str]]:
    """Every object the two flows left in the bucket: key -> (body, Cache-Control)."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    emulated = provision(moto_endpoint)
    seed_history(emulated, HISTORY)
    with pytest.MonkeyPatch.context() as env, FeedServer() as feeds:
        for key, value in emulated.environment().items():
            env.setenv(key, value)
        env.setenv("CPS_COVID_SOURCE_URL", feeds.route("/f.csv", Route((FEEDS / "2021-09-23-cases.csv").read_bytes())))
        env.setenv("CPS_COVID_PROFILE_URL", feeds.serve_profiles(FEEDS / "school-profiles.json"))
        vaccination = (FEEDS / "2021-09-23-vaccination.json").read_bytes()
        env.setenv("CPS_COVID_VACCINATION_SOURCE_URL", feeds.route("/v", Route(vaccination, "application/json")))
        assert run_update(as_of=AS_OF).is_completed()
        assert vaccination_update(as_of=AS_OF, return_state=True).is_completed()
        s3 = emulated.client("s3")
        out = {}
        for item in s3.list_objects_v2(Bucket=emulated.bucket)["Contents"]:
            answer = s3.get_object(Bucket=emulated.bucket, Key=item["Key"])
            out[item["Key"]] = (answer["Body"].read(), answer.get("CacheControl", ""))
    return out


def rows(payload: bytes) -> list[dict[str, str]]:
    """A CSV as the front end's parsers give it: a dict per line after the header."""
    return list(csv.DictReader(io.StringIO(payload.decode("utf-8"))))


def day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


class Links(HTMLParser):
    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.buttons: list[str] = []
        self.actions: list[str] = []
        self._href: str | None = None
        self._button = False
        self.feed(body.decode("utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self._href = attrs["href"]
            self.links.append((self._href, ""))
        self._button = tag == "button" or self._button
        if tag == "button":
            self.buttons.append("")
        if tag == "form":
            self.actions.append(attrs["action"])

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None
        if tag == "button":
            self._button = False

    def handle_data(self, data):
        if self._href is not None:
            self.links[-1] = (self.links[-1][0], self.links[-1][1] + data)
        if self._button:
            self.buttons[-1] += data.strip()


def test_the_per_school_table_has_the_front_ends_layout(site) -> None:
    header = next(csv.reader(io.StringIO(site["data/allCpsCovidData.csv"][0].decode())))
    assert header[: len(FIRST_COLUMNS)] == FIRST_COLUMNS
    days = [day(c) for c in header[len(FIRST_COLUMNS) :]]
    assert None not in days and days[-1] == AS_OF
    assert days == sorted(days) and days[-30:] == [AS_OF - timedelta(days=29 - i) for i in range(30)]


def test_the_school_page_reads_every_row_of_the_transposed_file_where_it_expects_it(site) -> None:
    data = rows(site["data/newFormatTest.csv"][0])
    schools = rows(site["data/allCpsCovidData.csv"][0])
    names = [s["School"] for s in schools]
    assert list(data[0])[1:] == names  # one column per school, in the table's order
    assert [r["School"] for r in data[:10]] == FIRST_COLUMNS[1:11]  # data[3..5] vaccination, data[9] gTotal
    carry_overs = 1
    after = [r["School"] for r in data[10 + carry_overs :]]
    parsed = [day(d) for d in after]
    assert None not in parsed and parsed == sorted(parsed) and parsed[-1] == AS_OF  # every row a day, newest last
    for school in schools:
        name = school["School"]
        assert [r[name] for r in data] == [school[c] for c in list(school)[1:]]
        assert int(data[9][name]) == sum(int(r[name]) for r in data[10 + carry_overs :])  # gTotal: all the days
        assert int(data[6][name]) == sum(int(r[name]) for r in data[-7:])  # 7Total: the last 7 day rows


def test_the_map_reads_enrolment_and_vaccination_by_name(site) -> None:
    schools = {s["CPS_School_ID"]: s for s in rows(site["data/allCpsCovidData.csv"][0])}
    addams = schools["609695"]
    records = json.loads((FEEDS / "2021-09-23-vaccination.json").read_bytes())
    record = next(r for r in records if r["SchoolID"] == 609695)
    assert int(addams["Student_Count"]) == record["OverallStudentCount"]
    assert int(addams["Vax_Complete"]) == (record["OverallCompletedCount"] or 0)
    assert int(addams["Vax_First_Dose"]) == (record["OverallOneDoseCount"] or 0)
    assert all(float(s["Latitude"]) and float(s["Longitude"]) for s in schools.values() if s["Latitude"])


def test_schools_are_in_name_order_with_a_new_school_at_its_place(site) -> None:
    seed = [r["School"] for r in rows((HISTORY / "allCpsCovidData.csv").read_bytes())]
    names = [r["School"] for r in rows(site["data/allCpsCovidData.csv"][0])]
    assert names[0] == "ADMINISTRATIVE"
    at = names.index("LAKE VIEW-STEM ACADEMY")  # new on 2021-09-23, from its school profile
    assert names[at - 1 : at + 2] == ["LAKE VIEW HIGH SCHOOL", "LAKE VIEW-STEM ACADEMY", "LANE TECH HIGH SCHOOL"]
    assert [n for n in names if n in set(seed)] == seed

    def disorder(order: list[str]) -> set[tuple[str, str]]:
        return {(a, b) for a, b in itertools.pairwise(order[1:]) if b < a}  # ADMINISTRATIVE first aside

    assert disorder(names) == disorder(seed)  # no new break of the order (the seed has one renamed school)


def test_every_link_of_the_new_cases_page_opens_the_school_the_front_end_would(site) -> None:
    schools = {s["School"]: s for s in rows(site["data/allCpsCovidData.csv"][0])}
    page = Links(site["newcases.html"][0])
    assert page.buttons == ["Back Home", "Case Archive"]
    assert page.actions == [f"{SITE}/index.html", f"{SITE}/historical/index.html"]
    schools_linked = [(h, t) for h, t in page.links if "/school.html?" in h]
    assert len(schools_linked) == 13
    for href, name in schools_linked:
        parts = urlsplit(href)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{SITE}/school.html"
        query = parse_qs(parts.query)
        assert query["name"] == [name.replace(" ", "_")]
        assert float(query["Lat"][0]) == float(schools[name]["Latitude"])
        assert float(query["Long"][0]) == float(schools[name]["Longitude"])


def test_the_archive_calendar_finds_each_day_and_every_archived_link_resolves(site) -> None:
    month = json.loads(site["historical/2021-09.json"][0])
    assert month == {"2021-09-22": {"cases": "74", "url": f"{SITE}/historical/2021-09-22-cases.html"}}
    for entry in month.values():
        key = entry["url"].removeprefix(f"{SITE}/")
        assert key in site
        page = Links(site[key][0])
        linked = [h for h, _ in page.links if "/school.html?" in h]
        assert len(linked) == 58 and all(h.startswith(f"{SITE}/school.html?name=") for h in linked)
        assert page.actions == [f"{SITE}/index.html", f"{SITE}/historical/index.html"]


def test_each_object_tells_browsers_how_long_to_keep_it(site) -> None:
    for key in ("data/allCpsCovidData.csv", "data/newFormatTest.csv", "data/CPStotals.csv", "newcases.html"):
        assert site[key][1] == cache_control.LIVE == "public, max-age=300, s-maxage=3600"
    assert site["historical/2021-09.json"][1] == cache_control.LIVE
    assert site["historical/2021-09-22-cases.html"][1] == "public, max-age=31536000, immutable"
    assert site["state/ledger.json"][1] == "no-store"
    assert all(control for _, control in site.values())  # no object left to the browser's guess
