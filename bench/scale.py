"""Part 2: synthetic histories from 500 to 100,000 schools by 365, 1,000 and 3,650 day columns.

Each point runs twice in fresh processes (``bench.scale_point``), so peak
memory is that point's alone: once as the project (read and type, merge =
``apply_feed`` + ``district_totals``, write the three CSVs, the transposed one
straight from the per-school table), once as pandas alone reading the same CSV
with its fastest engine and writing it back. A point whose predicted peak does
not fit in the memory available is skipped, with the figures that say why.
The growth exponent is the least-squares slope of log(merge time) over
log(cells).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from bench.common import ROOT, Section, Target, available_memory, megabytes, python, run_child, seconds
from bench.synthetic import generate

SCHOOLS = (500, 5_000, 50_000, 100_000)
DAYS = (365, 1_000, 3_650)
QUICK = ((40, 30), (120, 60), (300, 90))
DATA = ROOT / ".cache/bench/synthetic"
TARGET_POINT = (100_000, 1_000)
TARGET_SECONDS = 30.0
TARGET_BYTES = 4 * 1024**3
TARGET_EXPONENT = 1.1
HEADROOM = 0.8
"""A point runs only if its predicted peak is below this share of the memory available when it starts."""
LARGE_CELLS = 5_000_000
"""The exponent is also fitted on points from this size up, where fixed costs no longer hide the growth."""


def exponent(points: list[tuple[int, float]]) -> float | None:
    """Slope of log(seconds) against log(cells), least squares."""
    pairs = [(math.log(c), math.log(s)) for c, s in points if c > 0 and s > 0]
    if len(pairs) < 2:
        return None
    mean_x = sum(x for x, _ in pairs) / len(pairs)
    mean_y = sum(y for _, y in pairs) / len(pairs)
    spread = sum((x - mean_x) ** 2 for x, _ in pairs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in pairs) / spread


def _predicted_peak(cells: int, measured: list[tuple[int, int]]) -> int | None:
    """Peak RSS for ``cells``, scaled from the largest point measured so far (bytes per cell plus a base)."""
    if not measured:
        return None
    base = min(peak for _, peak in measured)
    biggest_cells, biggest_peak = max(measured)
    per_cell = max(0.0, (biggest_peak - base) / max(1, biggest_cells))
    return int(base + per_cell * cells)


def run(
    *, quick: bool = False, sizes: list[tuple[int, int]] | None = None, keep_data: bool = False, data: Path = DATA
) -> Section:
    points = sizes or (list(QUICK) if quick else [(s, d) for s in SCHOOLS for d in DAYS])
    points = sorted(points, key=lambda p: p[0] * p[1])
    section = Section(
        "scale",
        "Scale: synthetic histories (merge = apply_feed + district_totals; write = the three CSVs)",
        [
            "schools x days",
            "cells",
            "read",
            "merge",
            "write",
            "peak RSS",
            "output",
            "pandas read",
            "pandas write",
            "pandas peak",
        ],
    )
    measured_peaks: list[tuple[int, int]] = []
    merge_times: list[tuple[int, float]] = []
    results: dict[str, dict] = {}
    for schools, days in points:
        cells = schools * days
        label = f"{schools:,} x {days:,}"
        predicted = _predicted_peak(cells, measured_peaks)
        free = available_memory()
        if predicted is not None and predicted > HEADROOM * free:
            reason = (
                f"skipped: predicted peak {megabytes(predicted)} (scaled from the points measured) is more than "
                f"{HEADROOM:.0%} of the {megabytes(free)} available"
            )
            section.rows.append({"schools x days": label, "cells": f"{cells:,}", "read": reason})
            results[label] = {"skipped": reason}
            continue
        folder = data / f"{schools}x{days}"
        synthetic = generate(folder, schools, days)
        try:
            project, project_peak = run_child([python(), "-m", "bench.scale_point", "project", str(folder)])
            floor, floor_peak = run_child([python(), "-m", "bench.scale_point", "floor", str(folder)])
        except RuntimeError as failed:
            reason = f"failed: {str(failed).splitlines()[0][:200]}"
            section.rows.append({"schools x days": label, "cells": f"{cells:,}", "read": reason})
            results[label] = {"failed": str(failed)[-2000:]}
            continue
        finally:
            if not keep_data and synthetic.history.stat().st_size > 50_000_000:
                shutil.rmtree(folder, ignore_errors=True)
        measured_peaks.append((cells, project_peak))
        merge_times.append((cells, project["merge_s"]))
        output = project["schools_bytes"] + project["totals_bytes"] + project["transposed_bytes"]
        section.rows.append(
            {
                "schools x days": label,
                "cells": f"{cells:,}",
                "read": seconds(project["read_s"]),
                "merge": seconds(project["merge_s"]),
                "write": seconds(project["write_s"]),
                "peak RSS": megabytes(project_peak),
                "output": megabytes(output),
                "pandas read": f"{seconds(floor['read_s'])} ({floor['engine']})",
                "pandas write": seconds(floor["write_s"]),
                "pandas peak": megabytes(floor_peak),
            }
        )
        results[label] = {
            "schools": schools,
            "days": days,
            "cells": cells,
            "project": project,
            "project_peak": project_peak,
            "floor": floor,
            "floor_peak": floor_peak,
            "output_bytes": output,
        }

    slope = exponent(merge_times)
    large = [(c, s) for c, s in merge_times if c >= LARGE_CELLS]
    slope_large = exponent(large)
    target_label = f"{TARGET_POINT[0]:,} x {TARGET_POINT[1]:,}"
    target = results.get(target_label, {})
    if "project" in target:
        merged, peak = target["project"]["merge_s"], target["project_peak"]
        section.targets.append(
            Target(
                f"{target_label} merged in under {TARGET_SECONDS:g} s and under {megabytes(TARGET_BYTES)}",
                f"merge {seconds(merged)}, peak RSS {megabytes(peak)} (whole process: read, merge and write)",
                merged < TARGET_SECONDS and peak < TARGET_BYTES,
            )
        )
    else:
        section.targets.append(
            Target(
                f"{target_label} merged in under {TARGET_SECONDS:g} s and under {megabytes(TARGET_BYTES)}",
                "not measured in this run" + (f" ({next(iter(target.values()))})" if target else ""),
                None,
            )
        )
    shown = [f"{slope:.2f} over all {len(merge_times)} points"] if slope is not None else []
    if slope_large is not None:
        shown.append(f"{slope_large:.2f} over the {len(large)} points from {LARGE_CELLS:,} cells")
    worst = max((s for s in (slope, slope_large) if s is not None), default=None)
    section.targets.append(
        Target(
            f"merge time grows no faster than linearly in cells (exponent at most {TARGET_EXPONENT})",
            "; ".join(shown) or "fewer than two points",
            None if worst is None else worst <= TARGET_EXPONENT,
        )
    )
    section.notes = [
        "read = read_table + typed_schools of the CSV bytes; merge = apply_feed + district_totals; write = csv_bytes "
        "of the per-school table and the totals, transposed_csv_bytes for newFormatTest.csv.",
        "peak RSS: the child process's ru_maxrss (read, merge and write all in it, the input bytes held as a run "
        "holds them); pandas peak likewise for the pandas-only process.",
        "pandas read/write: pd.read_csv with the engine shown (pyarrow when installed; it is not in the lock, so "
        "the C parser) and DataFrame.to_csv of the frame it read: the same history CSV in and out. The frame is "
        "copied into one block per dtype before to_csv, untimed (pandas writes the one-block-per-column frame "
        "read_csv returns 2-3x slower), so this is pandas' best case; its peak includes that copy.",
        "output: bytes of the three CSVs written (allCpsCovidData, CPStotals, newFormatTest).",
    ]
    section.data = {"points": results, "exponent": slope, "exponent_large": slope_large}
    return section
