"""``make demo``: the case and vaccination flows on embedded defaults, and what they published (``demo-site/``).

Embedded defaults: an ephemeral Prefect API, a moto server on a free loopback
port seeded with the real 2021-09-22 history, and the bundled 2021-09-23 feed
served over loopback HTTP.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HISTORY_DIR = ROOT / "data/history-2021-09-22"
FEEDS_DIR = ROOT / "data/feeds"
FEED_FILE = FEEDS_DIR / "2021-09-23-cases.csv"
VACCINATION_FILE = FEEDS_DIR / "2021-09-23-vaccination.json"
AS_OF = date(2021, 9, 23)


def prefect_environment(home: Path) -> dict[str, str]:
    """An ephemeral API on a project-local, already-migrated home after the first run."""
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


def download_site(emulated, out: Path) -> list[Path]:
    """Copy every object of the bucket to ``out`` under the same keys."""
    s3 = emulated.client("s3")
    shutil.rmtree(out, ignore_errors=True)
    saved = []
    for item in s3.list_objects_v2(Bucket=emulated.bucket).get("Contents", []):
        target = out / item["Key"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=emulated.bucket, Key=item["Key"])["Body"].read())
        saved.append(target)
    return saved


def main(out: Path, prefect_home: Path, vaccination: bool = True) -> int:
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.update(prefect_environment(prefect_home.resolve()))
    from local.aws_emulator import moto_server, provision, seed_history
    from local.feed_server import FeedServer, Route

    with moto_server() as endpoint, FeedServer() as feeds:
        emulated = provision(endpoint)
        seed_history(emulated, HISTORY_DIR)
        os.environ.update(emulated.environment())
        os.environ["CPS_COVID_SOURCE_URL"] = feeds.route("/cps/covid-cases.csv", Route(FEED_FILE.read_bytes()))
        os.environ["CPS_COVID_PROFILE_URL"] = feeds.serve_profiles(FEEDS_DIR / "school-profiles.json")
        os.environ["CPS_COVID_VACCINATION_SOURCE_URL"] = feeds.route(
            "/cps/SchoolCOVIDStudentVaccinationRate", Route(VACCINATION_FILE.read_bytes(), "application/json")
        )
        print(f"moto server {endpoint}; feed {os.environ['CPS_COVID_SOURCE_URL']}; Prefect API: ephemeral")

        from cps_covid.rules.summary import UpdateSummary, VaccinationSummary
        from flows.update import run_update

        summary = UpdateSummary.model_validate(run_update(as_of=AS_OF).result())
        print()
        print(summary.text())
        for sent in emulated.sent_notifications():
            print(f"\nSNS message to {sent['topic_arn']}\nSubject: {sent['subject']}\n\n{sent['message']}")

        if vaccination:
            from flows.vaccination import vaccination_update

            url = os.environ["CPS_COVID_VACCINATION_SOURCE_URL"]
            print(f"\nThe vaccination update (cps-vaccination-update) on {url}:")
            print(VaccinationSummary.model_validate(vaccination_update(as_of=AS_OF)).text())
        saved = download_site(emulated, out)
        print(f"Published objects copied to {out}/:")
        for path in saved:
            print(f"  {path.relative_to(out)}")
    return 0
