"""The layout by role: imports run one way, from the command line down to the rules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What each part may import of the project (itself always). Rules import nothing outside them but the errors.
ALLOWED = {
    "cps_covid.rules": {"cps_covid.errors"},
    "cps_covid.settings": {"cps_covid.errors", "cps_covid.rules"},
    "cps_covid.systems": {"cps_covid.errors", "cps_covid.rules", "cps_covid.settings"},
    "cps_covid.publishing": {"cps_covid.errors", "cps_covid.rules", "cps_covid.settings", "cps_covid.systems"},
    "cps_covid.service": {"cps_covid.errors", "cps_covid.rules", "cps_covid.settings", "cps_covid.systems"}
    | {"cps_covid.waiting"},
    "cps_covid.operations": {"cps_covid.errors", "cps_covid.rules", "cps_covid.settings", "cps_covid.systems"}
    | {"cps_covid.publishing"},
    "tasks": {"cps_covid.errors", "cps_covid.rules", "cps_covid.settings", "cps_covid.systems"}
    | {"cps_covid.publishing"},
    "flows": {"cps_covid.errors", "cps_covid.rules", "cps_covid.settings", "cps_covid.publishing", "tasks"},
}
PROJECT = ("cps_covid", "tasks", "flows", "cli", "local")


def part(module: str) -> str:
    """``cps_covid.rules.merge`` -> ``cps_covid.rules``; ``tasks.fetch`` -> ``tasks``."""
    names = module.split(".")
    return ".".join(names[:2]) if names[0] == "cps_covid" and len(names) > 1 else names[0]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.split(".")[0] in PROJECT}


def test_imports_run_one_way() -> None:
    wrong = []
    for source, allowed in ALLOWED.items():
        folder = ROOT.joinpath(*source.split("."))
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]:
            for name in imports(path):
                if part(name) != source and part(name) not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_arrow(tmp_path: Path) -> None:
    rule = tmp_path / "rule.py"
    rule.write_text("from cps_covid.systems.s3 import Bucket\nimport pandas as pd\n")
    assert imports(rule) == {"cps_covid.systems.s3"}
    assert part("cps_covid.systems.s3") not in ALLOWED["cps_covid.rules"]


def test_the_longest_modules_run_first_by_their_current_paths() -> None:
    tree = ast.parse((ROOT / "tests/conftest.py").read_text())  # read, not imported: "conftest" is ambiguous
    (listed,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["LONGEST_FIRST"]
    ]
    assert listed and [path for path in listed if not (ROOT / path).is_file()] == []
