"""Where the tests find the command-line tools that come as Python packages (shellcheck,
actionlint): beside this interpreter, in the venv, else on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)
