"""Every Python file of the project passes pyflakes' rules (ruff's F): no import or variable
left unused after a move, no undefined name, no f-string without a placeholder."""

import subprocess
from pathlib import Path

from tests.tools import find

ROOT = Path(__file__).resolve().parent.parent


def test_pyflakes_rules_are_clean():
    ruff = find("ruff")
    assert ruff, "ruff is missing: pip install -r requirements-dev.txt"
    result = subprocess.run([ruff, "check", "--select", "F", "--no-cache", "--exclude", "venv,.venv", "."],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
