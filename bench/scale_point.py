"""One point of the scale benchmark, run in a fresh process so its peak memory is its own.

``python -m bench.scale_point project DIR``: what a run does with the history
in ``DIR`` (made by ``bench.synthetic``): read and type it, merge the feed,
compute the district totals, write the three published CSVs.

``python -m bench.scale_point floor DIR``: pandas alone reading the same CSV
with its fastest engine and writing the table back.

Prints one JSON line: seconds per phase, output sizes, and the peak RSS
(VmHWM) after each phase; the parent also reads the child's peak from the kernel.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

from bench.common import self_peak_rss
from bench.synthetic import Synthetic


def _fastest_engine() -> str:
    """pyarrow's multithreaded reader when installed, else pandas' C parser (the python engine is slower)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "c"
    return "pyarrow"


def _warm_up(synthetic: Synthetic) -> None:
    """Run every step once on the first rows, so one-time costs (lazy imports, caches) are not timed."""
    from itertools import islice

    import pandas as pd

    from cps_covid.rules import history, merge

    with synthetic.history.open("rb") as lines:
        head = b"".join(islice(lines, 6))
    schools = history.typed_schools(history.read_table(head, "warm-up"))
    totals = pd.DataFrame({"CPS_School_ID": schools["CPS_School_ID"], "season_total": 1})
    result = merge.apply_feed(schools, totals, synthetic.as_of)
    history.csv_bytes(result.schools)
    history.csv_bytes(merge.district_totals(result.schools))
    history.transposed_csv_bytes(result.schools)


def project(folder: Path) -> dict:
    import pandas as pd

    from bench.synthetic import load
    from cps_covid.rules import history, merge
    from cps_covid.rules.inputs import profiles_frame

    synthetic = load(folder)
    _warm_up(synthetic)
    started = time.perf_counter()
    payload = synthetic.history.read_bytes()  # the run holds the published object's body too
    schools = history.typed_schools(history.read_table(payload, synthetic.history.name))
    read = time.perf_counter() - started
    read_peak = self_peak_rss()
    totals = pd.read_csv(synthetic.feed, dtype={"CPS_School_ID": "str", "School": "str"})
    profiles = profiles_frame(json.loads(synthetic.profiles.read_text()))

    started = time.perf_counter()
    result = merge.apply_feed(schools, totals, synthetic.as_of, profiles=profiles, ignore_ids=synthetic.ignore_ids)
    applied = time.perf_counter() - started
    district = merge.district_totals(result.schools)
    merged = time.perf_counter() - started
    merge_peak = self_peak_rss()

    started = time.perf_counter()
    schools_csv = history.csv_bytes(result.schools)
    written_schools = time.perf_counter() - started
    totals_csv = history.csv_bytes(district)
    transposed_csv = history.transposed_csv_bytes(result.schools)
    written = time.perf_counter() - started
    return {
        "read_s": read,
        "apply_s": applied,
        "merge_s": merged,
        "write_schools_s": written_schools,
        "write_s": written,
        "schools_bytes": len(schools_csv),
        "totals_bytes": len(totals_csv),
        "transposed_bytes": len(transposed_csv),
        "input_bytes": len(payload),
        "new_cases": result.net_cases,
        "events": len(result.events),
        "read_peak": read_peak,
        "merge_peak": merge_peak,
        "peak": self_peak_rss(),
    }


def floor(folder: Path) -> dict:
    import pandas as pd

    from bench.synthetic import load

    synthetic = load(folder)
    engine = _fastest_engine()
    started = time.perf_counter()
    payload = synthetic.history.read_bytes()
    frame = pd.read_csv(io.BytesIO(payload), engine=engine, dtype={"CPS_School_ID": "str", "School": "str"})
    read = time.perf_counter() - started
    frame = frame.copy()  # one block per dtype, untimed: pandas' best case for to_csv
    started = time.perf_counter()
    written = frame.to_csv(index=False).encode()
    write = time.perf_counter() - started
    return {"engine": engine, "read_s": read, "write_s": write, "bytes": len(written), "peak": self_peak_rss()}


def main(argv: list[str]) -> int:
    mode, folder = argv[0], Path(argv[1])
    answer = project(folder) if mode == "project" else floor(folder)
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
