"""Dependencies point one way: by where code runs, never back.

infra/ (the Pulumi program) and ci/ (CI tooling) both use engine/'s rules; the program
never imports CI tooling. engine/ ships to the instance alone and runs on its Python:
standard library and engine/ only. ci/ runs in workflows before the program's packages
are installed: standard library, ci/, engine/, and PyYAML (the one package a workflow installs
first, to read stack files).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


def imported(source: str) -> set[str]:
    """The top-level packages a module's source imports, wherever the import statement is
    (in a function too), including `importlib.import_module("pkg.mod")` with a literal."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value.split(".")[0])
    return found


def modules(folder: str) -> list[Path]:
    paths = sorted((ROOT / folder).rglob("*.py"))
    assert paths, f"no Python files under {folder}/"
    return paths


def test_the_scanner_sees_every_form_of_import():
    source = ("import ci.stacks\nfrom ci import markdown\nimport os, json as j\n"
              "def f():\n    from tools.rehearse import x\n    importlib.import_module('testbed.harness')\n"
              "from . import sibling\n")
    assert imported(source) == {"ci", "os", "json", "tools", "testbed"}


@pytest.mark.parametrize("path", modules("infra"), ids=lambda p: p.name)
def test_the_pulumi_program_imports_no_ci_tooling(path):
    forbidden = imported(path.read_text()) & {"ci", "tools", "testbed", "tests"}
    assert not forbidden, (f"infra/{path.name} imports {sorted(forbidden)}: move what both need into "
                           "engine/ (engine/rules.py holds the shared rules)")


@pytest.mark.parametrize("path", modules("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_host_engine_needs_only_the_standard_library(path):
    foreign = imported(path.read_text()) - STDLIB - {"engine"}
    assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}; the instance has the stdlib only"


@pytest.mark.parametrize("path", modules("ci"), ids=lambda p: p.name)
def test_ci_tooling_runs_before_anything_is_installed(path):
    foreign = imported(path.read_text()) - STDLIB - {"ci", "engine", "yaml"}
    assert not foreign, f"ci/{path.name} imports {sorted(foreign)}; workflows run it before pip install"
