"""The command line's parser (no services): what the image can run without the checkout's dev stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_LOCAL = """
import sys
sys.modules["local"] = None  # the image holds no local/: importing it must fail loudly here
from cli.main import _parser
parser = _parser()
for command in ("run", "merge", "vaccination", "serve", "rebuild", "rollback", "deploy"):
    try:
        parser.parse_args([command, "--help"])
    except SystemExit as done:
        assert done.code == 0, command
print("ok")
"""


def test_the_image_command_line_needs_no_dev_stack() -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_LOCAL], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.rstrip().endswith("ok")
