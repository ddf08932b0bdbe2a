"""Write the bundled fresh feeds for 2021-09-23 from the bundled history (run once; output committed)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "data/history-2021-09-22/allCpsCovidData.csv"
OUT = ROOT / "data/feeds"
SEASON_START = "20210829"
NEW_CASES = {  # school id -> cases first reported on 2021-09-23
    "609772": 2,
    "610212": 1,
    "609695": 3,
    "610529": 1,
    "609954": 2,
    "610384": 1,
    "609966": 1,
    "610143": 4,
    "609828": 1,
    "609845": 2,
    "610274": 1,
    "609799": 1,
}
NEW_SCHOOL = {
    "SchoolID": "400199",
    "Short_Name": "LAKE VIEW - STEM ACADEMY",
    "School_Latitude": 41.9402,
    "School_Longitude": -87.6587,
}


def main() -> None:
    schools = pd.read_csv(HISTORY, dtype={"CPS_School_ID": str})
    days = [c for c in schools.columns if c.isdigit() and c >= SEASON_START]
    OUT.mkdir(parents=True, exist_ok=True)
    cases, api = [], []
    for _, row in schools.iterrows():
        sid = row["CPS_School_ID"]
        per_day = {d: int(row[d]) for d in days if row[d]}
        if sid in NEW_CASES:
            per_day["20210923"] = NEW_CASES[sid]
        for day, count in per_day.items():
            stamp = f"{day[4:6]}/{day[6:]}/{day[:4]}"
            cases += [[stamp, sid, row["School"], "Student" if i % 3 else "Adult"] for i in range(count)]
            api.append(
                {"SchoolID": int(sid), "SchoolShortName": row["School"], "CaseDate": stamp, "TotalCaseCount": count}
            )
    cases += [["09/23/2021", NEW_SCHOOL["SchoolID"], NEW_SCHOOL["Short_Name"], "Student"]] * 2
    cases.append(["09/23/2021", "610377", "NETWORK OFFICE", "Adult"])
    cases.append(["09/23/2021", "", "UNASSIGNED", "Adult"])
    api.append(
        {
            "SchoolID": int(NEW_SCHOOL["SchoolID"]),
            "SchoolShortName": NEW_SCHOOL["Short_Name"],
            "CaseDate": "09/23/2021",
            "TotalCaseCount": 2,
        }
    )
    with (OUT / "2021-09-23-cases.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(["Result Date", "CPS School ID", "School", "Role"])
        writer.writerows(cases)
    (OUT / "2021-09-23-health-api.json").write_text(json.dumps(api, indent=1) + "\n")
    profile = {k: v for k, v in NEW_SCHOOL.items() if k != "SchoolID"} | {"SchoolID": int(NEW_SCHOOL["SchoolID"])}
    (OUT / "school-profiles.json").write_text(json.dumps([profile], indent=1) + "\n")
    vaccination_feed(schools)


def vaccination_feed(schools: pd.DataFrame) -> None:
    """The daily vaccination feed as the district served it: one record per school, some counts null.

    Made-up figures for the real school ids (ADMINISTRATIVE has no students): every
    13th school has no completed count yet and every 41st no figures at all (null).
    """
    draw = random.Random(20210923)
    records = []
    for number, (_, row) in enumerate(schools.iterrows()):
        if row["CPS_School_ID"] == "999999":
            continue
        students = draw.randint(120, 2400)
        first = int(students * draw.uniform(0.05, 0.75))
        complete = int(first * draw.uniform(0.4, 0.95))
        record = {
            "SchoolID": int(row["CPS_School_ID"]),
            "SchoolShortName": row["School"],
            "OverallStudentCount": students,
            "OverallOneDoseCount": first,
            "OverallCompletedCount": complete,
        }
        if number % 13 == 5:
            record["OverallCompletedCount"] = None
        if number % 41 == 7:
            record |= {"OverallStudentCount": None, "OverallOneDoseCount": None, "OverallCompletedCount": None}
        records.append(record)
    (OUT / "2021-09-23-vaccination.json").write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
