"""What every benchmark shares: timing, peak memory of child processes, the machine, result tables."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORY_DIR = ROOT / "data/history-2021-09-22"
FEEDS_DIR = ROOT / "data/feeds"


@dataclass
class Target:
    """One of the issue's targets, with the figure measured in this run."""

    text: str
    measured: str
    met: bool | None
    """None: could not be measured here (the reason is in ``measured``)."""


@dataclass
class Section:
    """One benchmark's results: a table (rows of column -> value) and the targets it checks."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, object]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)
    """Raw figures for programs (the smoke test reads these, ``results.json`` keeps them)."""


@dataclass
class Timing:
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def best(self) -> float:
        return min(self.runs)


def interleaved(
    functions: dict[str, Callable[[], object]], rounds: int, repeats: dict[str, int] | None = None
) -> dict[str, Timing]:
    """Time several functions in alternation, so load from other processes falls on all of them alike.

    Each round runs every function ``repeats[name]`` times (default once); every run is kept.
    """
    repeats = repeats or {}
    runs: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            for _ in range(repeats.get(name, 1)):
                start = time.perf_counter()
                function()
                runs[name].append(time.perf_counter() - start)
    return {name: Timing(values) for name, values in runs.items()}


def seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.001:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def megabytes(value: float) -> str:
    if value >= 1024**3:
        return f"{value / 1024**3:.2f} GiB"
    if value >= 1024**2:
        return f"{value / 1024**2:,.0f} MiB"
    return f"{value / 1024:,.0f} KiB"


def ratio(value: float) -> str:
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2f}x"


def run_child(
    argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None
) -> tuple[dict, int]:
    """Run ``argv`` in a fresh process; returns its JSON answer (last line of its stdout) and its peak
    resident set size in bytes, from the kernel's accounting of that one child (``wait4``; the
    ``RUSAGE_CHILDREN`` total would be the largest of all children so far)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env, cwd=ROOT, text=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            if deadline is not None and time.monotonic() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                process.returncode = -9
                err.seek(0)
                raise RuntimeError(f"{' '.join(argv)} did not finish within {timeout} s:\n{err.read()[-3000:]}")
            time.sleep(0.02)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        answer, problems = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}:\n{problems[-3000:]}")
    lines = [line for line in answer.splitlines() if line.strip()]
    return json.loads(lines[-1]), usage.ru_maxrss * 1024  # ru_maxrss is in kilobytes on Linux


def _proc_bytes(path: str, field: str) -> int:
    """A ``field: N kB`` line of a /proc file, in bytes (0 when absent)."""
    with open(path) as lines:
        for line in lines:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


def self_peak_rss() -> int:
    """This process's peak RSS so far (VmHWM), in bytes."""
    return _proc_bytes("/proc/self/status", "VmHWM")


def available_memory() -> int:
    return _proc_bytes("/proc/meminfo", "MemAvailable")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    total = 0
    with contextlib.suppress(OSError):
        total = _proc_bytes("/proc/meminfo", "MemTotal")
    versions = {}
    for module in ("pandas", "numpy", "prefect"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:
            versions[module] = "not installed"
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no") else ""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": megabytes(total),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "os": f"{platform.system()} {platform.release()}",
        "commit": f"{commit}{dirty}" if commit else "unknown",
        "load average at start (1/5/15 min)": load_average(),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def python() -> str:
    return sys.executable
