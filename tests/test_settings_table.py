"""The settings tables of the docs are the ones their declarations make: the stack settings
(docs/configuration.md) from Pulumi.yaml, the engine's flags (docs/operations.md) from
engine/settings.OPTIONS."""

from __future__ import annotations

import re

import pytest

from engine import settings
from infra import config
from tools import settings_table


@pytest.mark.parametrize("table", settings_table.TABLES, ids=lambda t: t.what)
def test_the_docs_tables_are_current(table):
    doc = table.doc.read_text()
    assert table.section() in doc, f"docs/{table.doc.name}: stale {table.what}; run `python -m tools.settings_table --write`"


def test_the_stack_settings_table_lists_every_key_with_its_type_default_and_description():
    table = settings_table.TABLES[0]
    doc = table.doc.read_text()
    rows = doc[doc.index(table.begin):doc.index(table.end)]
    keys = re.findall(r"^\| `(\w+)` \| ", rows, re.M)
    schema = config.load_schema()
    assert keys == list(schema), "docs/configuration.md's table is not one row per Pulumi.yaml key, in order"
    table = settings_table.stack_settings()
    assert "| `volumeSize` | integer | `30` | Root volume size in GiB" in table
    assert "| `allowOpenSsh` | boolean | `false` |" in table and "| `ami` | string | (empty) |" in table
    assert "&lt;stack as a DNS label>" in table  # not taken for an HTML tag


def test_the_engine_flags_table_lists_every_flag_the_engine_parses_with_its_default():
    table = settings_table.engine_flags()
    flags = {flag for action in settings.parser()._actions for flag in action.option_strings} - {"-h", "--help"}
    assert all(f"`{flag}`" in table for flag in flags), flags
    assert "| `--health-timeout` | `600` | a whole number from 1 to 10^8 | `healthTimeout` |" in table


@pytest.mark.parametrize("domain", ["", "demo.example.com"])
def test_the_sent_column_is_what_to_args_writes_for_default_settings(domain):
    """A flag marked "always" is on the command line of settings at their defaults; one
    marked "not at its default" is not; "only with --domain" ones only with a domain."""
    sent = dict(re.findall(r"^\| `(--[\w-]+)`[^|]*\|(?:[^|]*\|){3} ([^|]+) \|$", settings_table.engine_flags(), re.M))
    assert len(sent) == len(settings.OPTIONS)
    flags = {arg for arg in settings.to_args(settings.Settings(domain=domain)) if arg.startswith("--")}
    expected = {flag for flag, when in sent.items()
                if when.startswith("always") and (domain or "only with" not in when)} | ({"--domain"} if domain else set())
    assert flags == expected


@pytest.mark.parametrize("table", settings_table.TABLES, ids=lambda t: t.what)
def test_write_replaces_only_the_table(table):
    doc = f"before\n{table.begin}\n| stale |\n{table.end}\nafter\n"
    assert table.written(doc) == f"before\n{table.section()}\nafter\n"


def test_main_writes_every_table(tmp_path, monkeypatch):
    tables = []
    for table in settings_table.TABLES:
        copy = tmp_path / table.doc.name
        copy.write_text(f"# {table.what}\n{table.begin}\n| stale |\n{table.end}\n")
        tables.append(settings_table.Table(copy, table.what, table.markdown))
    monkeypatch.setattr(settings_table, "TABLES", tuple(tables))
    assert settings_table.main(["--write"]) == 0
    for table in tables:
        assert table.section() in table.doc.read_text()
