"""testbed/README.md says what is true: it names every part of the test bed and only parts that
exist, its commands run, and its tables list the fixture's refs and the stand-ins' tags."""

from __future__ import annotations

import inspect
import re
import shlex
import subprocess
import sys
from pathlib import Path

from testbed.fixture_repo import FIXTURE_REFS
from testbed.ports import host_session_lock
from testbed.standins import STANDIN_TAGS

ROOT = Path(__file__).resolve().parent.parent
TESTBED = ROOT / "testbed"
README = (TESTBED / "README.md").read_text()


def table_first_cells(heading: str) -> list[str]:
    """The code spans in the first column of the table under `## heading`."""
    section = README.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [span for row in rows for span in re.findall(r"`([^`]+)`", row.split("|")[1])]


def test_the_parts_table_names_every_module_and_nothing_else():
    named = set(table_first_cells("The parts"))
    modules = {p.name for p in TESTBED.glob("*.py") if p.name != "__init__.py"} | {"standin/rootfs/"}
    assert named == modules, f"missing: {sorted(modules - named)}; gone: {sorted(named - modules)}"


def test_the_refs_and_tags_tables_are_the_fixtures():
    assert set(table_first_cells("The fixture repo")) == set(FIXTURE_REFS)
    assert set(table_first_cells("The stand-in images")) == set(STANDIN_TAGS)


def test_the_lock_it_names_is_the_one_host_tests_take():
    lock = inspect.signature(host_session_lock).parameters["path"].default
    assert f"`{lock}`" in README


def test_its_python_commands_run():
    commands = re.findall(r"python -m (testbed\.\w+)", README)
    assert "testbed.harness" in commands
    for module in set(commands):
        result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0 and "usage:" in result.stdout, result.stderr


def test_its_pytest_commands_name_real_files_and_tests():
    lines = re.findall(r"^venv/bin/python -m pytest (.+)$", README, re.M)
    assert lines
    for line in lines:
        words = shlex.split(line)
        path = ROOT / words[0]
        assert path.is_file(), words[0]
        if "-k" in words:
            word = words[words.index("-k") + 1]
            assert re.search(rf"^def test_\w*{word}", path.read_text(), re.M), f"-k {word} selects nothing"
