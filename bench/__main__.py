"""``python -m bench`` (``make bench``): run the benchmarks, print their tables, write ``bench/results.md``.

``--quick`` runs every benchmark on tiny sizes (the smoke test does); ``--only``
picks benchmarks; ``--sizes 500x365,5000x1000`` sets the scale points.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, Section, Target, load_average, machine, seconds

BENCHMARKS = ("merge_vs_rows", "scale", "flow_overhead", "container", "deployed_run", "freshness")
RESULTS = ROOT / "bench/results.md"


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        schools, _, days = part.strip().lower().partition("x")
        sizes.append((int(schools), int(days)))
    return sizes


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions: checks, not figures")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated, from {', '.join(BENCHMARKS)}")
    parser.add_argument("--sizes", type=_sizes, help="scale points as SCHOOLSxDAYS,... (default: the issue's grid)")
    parser.add_argument("--out", type=Path, help="results file (default bench/results.md; none with --quick)")
    parser.add_argument("--json", type=Path, help="also write every raw figure here")
    parser.add_argument("--api-url", help="use this running Prefect API instead of starting one")
    parser.add_argument("--docker", default="docker", help="the docker command")
    parser.add_argument("--keep-data", action="store_true", help="keep the large synthetic histories")
    parser.add_argument("--data", type=Path, help="where synthetic histories are made (default .cache/bench/synthetic)")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def runners(args: argparse.Namespace) -> dict[str, Callable[[], Section]]:
    def merge_vs_rows() -> Section:
        from bench import merge_vs_rows

        return merge_vs_rows.run(quick=args.quick)

    def scale() -> Section:
        from bench import scale

        return scale.run(quick=args.quick, sizes=args.sizes, keep_data=args.keep_data, data=args.data or scale.DATA)

    def flow_overhead() -> Section:
        from bench import flow_overhead

        return flow_overhead.run(quick=args.quick, api_url=args.api_url)

    def container() -> Section:
        from bench import container

        return container.run(quick=args.quick, api_url=args.api_url, docker=args.docker)

    def deployed_run() -> Section:
        from bench import deployed_run

        return deployed_run.run(quick=args.quick, api_url=args.api_url)

    def freshness() -> Section:
        from bench import freshness

        return freshness.run(quick=args.quick, api_url=args.api_url)

    return {
        "freshness": freshness,
        "merge_vs_rows": merge_vs_rows,
        "scale": scale,
        "flow_overhead": flow_overhead,
        "container": container,
        "deployed_run": deployed_run,
    }


def table(columns: list[str], rows: list[dict[str, object]]) -> list[str]:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


def _met(target: Target) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[target.met]


MARKER = "<!-- make bench writes below this line; the dated figures above it are kept -->"


def markdown(sections: list[Section], about: dict[str, str], elapsed: float, quick: bool) -> str:
    """This run's tables, the part of ``bench/results.md`` below ``MARKER``."""
    lines = [
        "## The last benchmark run",
        "",
        f"`{'python -m bench --quick' if quick else 'make bench'}` on {about['date']}, {seconds(elapsed)} in all. "
        "Each figure was measured in this run; every ratio compares figures measured in this same run.",
        "",
        *table(["machine", ""], [{"machine": k, "": v} for k, v in about.items() if k != "date"]),
        "",
        "### Targets",
        "",
        *table(
            ["target", "measured", ""],
            [{"target": t.text, "measured": t.measured, "": _met(t)} for s in sections for t in s.targets],
        ),
    ]
    for number, section in enumerate(sections, start=1):
        lines += ["", f"### {number}. {section.title}", "", *table(section.columns, section.rows)]
        if section.notes:
            lines += ["", *[f"- {note}" for note in section.notes]]
    return "\n".join(lines) + "\n"


def into_results(existing: str | None, run: str) -> str:
    """The results file with this run below ``MARKER``: the dated figures above it are kept, the last run replaced."""
    head = existing.split(MARKER)[0] if existing and MARKER in existing else "# Figures\n\n"
    return f"{head}{MARKER}\n\n{run}"


def text(section: Section) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in section.rows)) for c in section.columns}
    out = [section.title, "  ".join(c.ljust(widths[c]) for c in section.columns)]
    out += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in section.columns) for r in section.rows]
    out += [f"  target: {t.text}: {t.measured} [{_met(t)}]" for t in section.targets]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    about = machine()
    started = time.perf_counter()
    sections: list[Section] = []
    failed = False
    available = runners(args)
    for name in args.only.split(","):
        print(f"== {name} ...", flush=True)
        clock = time.perf_counter()
        try:
            section = available[name]()
        except Exception as err:  # a benchmark that breaks is reported, the others still run
            failed = True
            section = Section(name, f"{name}: FAILED", ["error"], [{"error": f"{type(err).__name__}: {err}"}])
            section.targets.append(Target(f"{name} ran", f"failed: {type(err).__name__}: {err}", False))
            traceback.print_exc()
        print(text(section), f"\n({seconds(time.perf_counter() - clock)})\n", flush=True)
        sections.append(section)
    about["load average at end (1/5/15 min)"] = load_average()
    elapsed = time.perf_counter() - started
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        existing = out.read_text() if out.exists() else None
        out.write_text(into_results(existing, markdown(sections, about, elapsed, args.quick)))
        print(f"wrote {out}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        raw = {"machine": about, "sections": {s.name: s.data for s in sections}}
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
