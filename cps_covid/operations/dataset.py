"""``cps-covid dataset``: the open dataset built from a history folder, offline (no AWS, no Prefect).

The same package an update publishes under ``data/open/``, from the per-school table
alone: no ledger, so its provenance table is empty and its errata hold what reading
the folder changed (a migration of an older layout); drift in the folder is printed
as a warning, as the update reports it, and repaired by the first update that merges.
"""

from __future__ import annotations

from pathlib import Path

from cps_covid.errors import InputError
from cps_covid.rules import inputs, open_data
from cps_covid.rules.errata import errata_of_events, provenance_table
from cps_covid.rules.season_calendar import DISTRICT_SEASONS, SeasonRules


def build_dataset(
    history_dir: Path, out: Path, *, seasons: str = DISTRICT_SEASONS, sources: dict[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """Write the package's files to ``out``; (the files written, the history's warnings). Nothing is written
    when the folder cannot be read or validated."""
    schools_path, totals_path = history_dir / "allCpsCovidData.csv", history_dir / "CPStotals.csv"
    try:
        schools_csv = schools_path.read_bytes()
        totals_csv = totals_path.read_bytes() if totals_path.exists() else None
    except OSError as err:
        raise InputError(f"{err.filename}: cannot be read ({err.strerror})") from None
    history = inputs.read_history(schools_csv, totals_csv, (str(schools_path), str(totals_path)))
    errata = errata_of_events(history.events, "", f"read {schools_path.name}")
    objects = open_data.package_objects(
        history.schools,
        SeasonRules.of(seasons).calendar,
        errata,
        provenance_table([]),
        "",
        sources or {},
    )
    out.mkdir(parents=True, exist_ok=True)
    for key, (body, _) in objects.items():
        (out / key.removeprefix(open_data.OPEN_PREFIX)).write_bytes(body)
    return sorted(objects), history.warnings
