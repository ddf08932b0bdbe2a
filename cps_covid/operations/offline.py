"""``cps-covid merge``: one fresh feed applied to a folder, no AWS and no Prefect."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from cps_covid.errors import InputError
from cps_covid.rules import applying, clock, inputs, outputs, season_calendar
from cps_covid.rules.season_calendar import DISTRICT_SEASONS
from cps_covid.settings import DEFAULT_TIMEZONE


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror})") from None


def merge_folder(
    history_dir: Path,
    fresh: Path,
    as_of: date,
    out: Path,
    *,
    ignore_ids: frozenset[str] = frozenset(),
    profiles: Path | None = None,
    site_url: str = "https://cpscovid.com",
    new_season: str | None = None,
    seasons: str = DISTRICT_SEASONS,
    fill_gap: bool = False,
    timezone: str = DEFAULT_TIMEZONE,
) -> outputs.Publication:
    """Validate, merge and write; on any error nothing is written to ``out``."""
    schools_path = history_dir / "allCpsCovidData.csv"
    totals_path = history_dir / "CPStotals.csv"
    feed = inputs.read_feed(_read(fresh), str(fresh))
    hist = inputs.read_history(_read(schools_path), _read(totals_path), (str(schools_path), str(totals_path)))
    known = json.loads(_read(profiles)) if profiles else []
    wanted = set(inputs.new_school_ids(feed, hist.schools, ignore_ids))
    found = [p | {"CPS_School_ID": str(p["SchoolID"])} for p in known if str(p.get("SchoolID")) in wanted]
    rerun = season_calendar.Rerun(
        f"cps-covid merge --history {history_dir} --fresh {fresh} --as-of {as_of} --out {out}"
    )
    result = applying.apply(
        feed,
        hist,
        as_of,
        profiles=inputs.profiles_frame(found),
        ignore_ids=ignore_ids,
        new_season=new_season,
        rules=season_calendar.SeasonRules.of(seasons),  # the settings' default window and gap limit
        fill_gap=fill_gap,
        rerun=rerun,
    )
    publication = outputs.build_publication(result, as_of, datetime.now(clock.zone(timezone)), site_url)
    publication.warnings = hist.warnings
    out.mkdir(parents=True, exist_ok=True)
    for key, (body, _) in publication.objects.items():
        (out / Path(key).name).write_bytes(body)
    if publication.message:
        (out / "notification.txt").write_text(f"Subject: {publication.subject}\n\n{publication.message}")
    return publication
