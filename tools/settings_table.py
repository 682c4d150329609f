"""The engine's flags as a Markdown table, made from its own declaration (engine/settings.OPTIONS).

    python -m tools.settings_table          # print the table
    python -m tools.settings_table --write  # put it in docs/operations.md, between its markers

tests/test_settings_table.py fails when the doc's table is not this one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
BEGIN = "<!-- engine flags: made by `python -m tools.settings_table --write`; do not edit -->"
END = "<!-- end of engine flags -->"


def _default(option: settings.Option) -> str:
    value = option.default
    if option.kind is bool:
        return "on" if value else "off"
    if option.name == "git_ref":
        return "the ref"
    if value in ("", {}, ()):
        return "none"
    return f"`{option.text(value)}`"


def markdown() -> str:
    rows = ["| flag | default | form | stack setting |", "|---|---|---|---|"]
    for option in settings.OPTIONS:
        flag = f"`{option.flag}`, `--no-{option.flag[2:]}`" if option.kind is bool else f"`{option.flag}`"
        form = option.form.replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| {flag} | {_default(option)} | {form} | {f'`{option.key}`' if option.key else ''} |")
    return "\n".join(rows)


def section() -> str:
    return f"{BEGIN}\n{markdown()}\n{END}"


def written(doc: str) -> str:
    """`doc` with its table replaced by the current one."""
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    return doc[:start] + section() + doc[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.settings_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"replace the table in {DOC.name} (default: print it)")
    args = parser.parse_args(argv)
    if args.write:
        DOC.write_text(written(DOC.read_text()))
    else:
        print(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
