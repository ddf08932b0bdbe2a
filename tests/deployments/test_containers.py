"""The lock the pytest-xdist workers share around ``make image``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from containers import locked


def test_the_lock_is_free_once_the_command_ends_even_if_it_left_a_daemon_behind(tmp_path: Path) -> None:
    lock = tmp_path / "image.lock"
    pidfile = tmp_path / "daemon.pid"
    # The command starts a background process that outlives it, as make image starts dockerd.
    daemon = f"sleep 120 </dev/null >/dev/null 2>&1 & echo $! > {pidfile}"
    subprocess.run(locked(lock, ["bash", "-c", daemon]), check=True, timeout=30)
    try:
        free = subprocess.run(["flock", "--nonblock", str(lock), "true"], timeout=30)
        assert free.returncode == 0, "the lock is still held by the process the command left behind"
    finally:
        subprocess.run(["kill", pidfile.read_text().strip()], check=False)


def test_a_second_command_waits_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "image.lock"
    first = subprocess.Popen(
        locked(lock, ["bash", "-c", "echo locked; read -r _"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert first.stdout is not None and first.stdout.readline() == b"locked\n"
        waiting = subprocess.run(["flock", "--nonblock", str(lock), "true"], timeout=30)
        assert waiting.returncode != 0, "the lock did not exclude a second build"
    finally:
        first.communicate(b"\n", timeout=30)
    assert first.returncode == 0
