"""The settings tables of the docs, made from their declarations: the stack settings from
Pulumi.yaml (docs/configuration.md) and the engine's flags from engine/settings.OPTIONS
(docs/operations.md).

    python -m tools.settings_table          # print both tables
    python -m tools.settings_table --write  # put each in its doc, between its markers

tests/test_settings_table.py fails when a doc's table is not the one made here.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine import settings
from infra import config

DOCS = Path(__file__).resolve().parent.parent / "docs"
COMMAND = "python -m tools.settings_table --write"


def _cell(text: str) -> str:
    """`text` safe in a Markdown table cell (a `|` ends the cell, a `<...>` is taken for HTML)."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def _default(option: settings.Option) -> str:
    value = option.default
    if option.kind is bool:
        return "on" if value else "off"
    if option.name == "git_ref":
        return "the ref"
    if value in ("", {}, ()):
        return "none"
    return f"`{option.text(value)}`"


def _sent(option: settings.Option) -> str:
    """When settings.to_args writes the flag."""
    when = "always" if option.always_sent else "not at its default"
    if option.only_with:
        when += f", only with `{next(o.flag for o in settings.OPTIONS if o.name == option.only_with)}`"
    return when


def engine_flags() -> str:
    rows = ["| flag | default | form | stack setting | sent |", "|---|---|---|---|---|"]
    for option in settings.OPTIONS:
        flag = f"`{option.flag}`, `--no-{option.flag[2:]}`" if option.kind is bool else f"`{option.flag}`"
        key = f"`{option.key}`" if option.key else ""
        rows.append(f"| {flag} | {_default(option)} | {_cell(option.form)} | {key} | {_sent(option)} |")
    return "\n".join(rows)


def _schema_default(value: object) -> str:
    if value == "" or value is None:
        return "(empty)"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def stack_settings() -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, setting in config.load_schema().items():
        rows.append(f"| `{key}` | {setting.type} | {_schema_default(setting.default)} | {_cell(setting.description)} |")
    return "\n".join(rows)


@dataclass(frozen=True)
class Table:
    doc: Path
    what: str  # names the markers
    markdown: Callable[[], str]

    @property
    def begin(self) -> str:
        return f"<!-- {self.what}: made by `{COMMAND}` from {self.source}; do not edit -->"

    @property
    def end(self) -> str:
        return f"<!-- end of {self.what} -->"

    @property
    def source(self) -> str:
        return "Pulumi.yaml" if self.markdown is stack_settings else "engine/settings.py"

    def section(self) -> str:
        return f"{self.begin}\n{self.markdown()}\n{self.end}"

    def written(self, doc: str) -> str:
        """`doc` with its table replaced by the current one."""
        start, end = doc.index(self.begin), doc.index(self.end) + len(self.end)
        return doc[:start] + self.section() + doc[end:]


TABLES = (
    Table(DOCS / "configuration.md", "stack settings", stack_settings),
    Table(DOCS / "operations.md", "engine flags", engine_flags),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.settings_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true",
                        help="replace each table in its doc, " + ", ".join(f"docs/{t.doc.name}" for t in TABLES)
                        + " (default: print them)")
    args = parser.parse_args(argv)
    for table in TABLES:
        if args.write:
            table.doc.write_text(table.written(table.doc.read_text()))
        else:
            print(f"{table.doc.name}:\n{table.markdown()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
