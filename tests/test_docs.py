"""The README and docs/ say what the code does: commands, settings, modules and links kept equal to it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cli.main import _parser
from cps_covid.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FIGURES = ROOT / "bench/results.md"  # every measured figure, dated


def first_cells(page: Path) -> list[str]:
    """The first cell of every table row of a page, without the header rows."""
    rows = [line for line in page.read_text().splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [row.split("|")[1].strip() for row in rows]


def subcommands() -> set[str]:
    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_the_readme_lists_every_command_and_no_other() -> None:
    listed = {m.group(1) for cell in first_cells(README) if (m := re.fullmatch(r"`cps-covid (\w+)`", cell))}
    assert listed == subcommands()


def test_the_readme_fits_two_screens() -> None:
    assert len(README.read_text().splitlines()) <= 120


def test_the_configuration_page_lists_every_setting_and_no_other() -> None:
    listed = {m.group(1) for cell in first_cells(DOCS / "configuration.md") if (m := re.fullmatch(r"`(\w+)`", cell))}
    assert listed == set(Settings.model_fields)


def test_the_layout_page_names_every_module() -> None:
    text = (DOCS / "layout.md").read_text()
    missing = []
    for folder in ("flows", "tasks", "cps_covid", "cli", "local"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name != "__init__.py" and f"`{path.name}`" not in text and f"{path.name}`" not in text:
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"docs/layout.md does not name {missing}"


def test_every_link_between_pages_leads_somewhere() -> None:
    broken = []
    for page in [README, *sorted(DOCS.glob("*.md")), FIGURES]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_every_path_the_pages_name_exists() -> None:
    """A file or folder of the project named in backticks (``cps_covid/rules/merge.py``, ``tests/standins/``)."""
    tops = "|".join(["cps_covid", "tasks", "flows", "cli", "local", "tests", "bench", "deployments", "docs", "tools"])
    missing = []
    for page in [README, *sorted(DOCS.glob("*.md")), FIGURES]:
        for path in re.findall(rf"`((?:{tops})/[\w./-]*)`", page.read_text()):
            if not (ROOT / path).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert not missing, "\n".join(missing)
