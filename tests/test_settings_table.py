"""The engine's flags table in docs/operations.md is the one its declaration makes."""

from __future__ import annotations

from engine import settings
from tools import settings_table


def test_the_docs_table_of_engine_flags_is_current():
    doc = settings_table.DOC.read_text()
    assert settings_table.section() in doc, "stale: run `python -m tools.settings_table --write`"


def test_the_table_lists_every_flag_the_engine_parses_with_its_default():
    table = settings_table.markdown()
    flags = {flag for action in settings.parser()._actions for flag in action.option_strings} - {"-h", "--help"}
    assert all(f"`{flag}`" in table for flag in flags), flags
    assert "| `--health-timeout` | `600` | a whole number from 1 to 10^8 | `healthTimeout` |" in table


def test_write_replaces_only_the_table():
    doc = f"before\n{settings_table.BEGIN}\n| stale |\n{settings_table.END}\nafter\n"
    assert settings_table.written(doc) == f"before\n{settings_table.section()}\nafter\n"
