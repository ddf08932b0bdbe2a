"""``cps-covid dataset``: the open dataset from a history folder, offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cps_covid.errors import InputError
from cps_covid.operations.dataset import build_dataset
from cps_covid.rules import history, open_data


def test_the_bundled_history_gives_the_record_up_to_its_day(history_dir: Path, tmp_path: Path) -> None:
    written, warnings = build_dataset(history_dir, tmp_path / "open")

    names = sorted(p.name for p in (tmp_path / "open").iterdir())
    assert names == sorted(k.removeprefix(open_data.OPEN_PREFIX) for k in written)
    assert {"datapackage.json", "README.md", "cases.csv", "cases.parquet", "errata.csv"} <= set(names)
    tables = open_data.read_tables(
        {n: (tmp_path / "open" / f"{n}.csv").read_bytes() for n in ("cases", "schools", "carry_overs", "district_days")}
    )
    published = (history_dir / "allCpsCovidData.csv").read_bytes()
    assert history.csv_bytes(open_data.wide_table(tables)) == published
    assert tables["district_days"]["date"].iloc[-1] == "2021-09-22"
    assert (tmp_path / "open/provenance.csv").read_text().strip() == ",".join(open_data.PROVENANCE_COLUMNS)
    assert any("BLAIR" in w for w in warnings)  # the folder's drift is reported, not repaired here


def test_a_folder_without_the_table_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"allCpsCovidData\.csv: cannot be read"):
        build_dataset(tmp_path, tmp_path / "open")
    assert not (tmp_path / "open").exists()


def test_a_broken_table_is_refused_naming_the_cell_and_writes_nothing(history_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "history"
    shutil.copytree(history_dir, folder)
    table = folder / "allCpsCovidData.csv"
    lines = table.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",two"
    table.write_text("\n".join(lines) + "\n")

    with pytest.raises(InputError, match="two"):
        build_dataset(folder, tmp_path / "open")
    assert not (tmp_path / "open").exists()
