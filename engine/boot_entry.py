"""The boot zipapp's entry: `python3 boot.pyz bootstrap [flags]`, as user_data runs it.

The boot zipapp (infra/bootstrap.py) carries only this, engine/bootstrap.py and what that
imports: its digest replaces the instance, so it holds no other command. The general entry
(engine/__main__.py) hands `bootstrap` to this module, so the flags are parsed in one place.
"""

from __future__ import annotations

import argparse
import sys

from engine import BOOTSTRAP_LOG, STATE_DIR

USAGE = "usage: python3 boot.pyz bootstrap [--state-dir DIR] [--log FILE] [--ref REF] [--tag TAG] [--pull IMAGE_REF]..."


def main(argv: list[str]) -> int:
    if argv[:1] != ["bootstrap"]:
        print(USAGE, file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog="engine bootstrap", allow_abbrev=False)
    p.add_argument("--state-dir", default=STATE_DIR)
    p.add_argument("--log", default=BOOTSTRAP_LOG)
    # The first deploy's, from user_data (validated by the program: infra/commands.py).
    p.add_argument("--ref", default="")
    p.add_argument("--tag", default="")
    p.add_argument("--pull", action="append", default=[], metavar="IMAGE_REF")
    chosen = p.parse_args(argv[1:])
    from engine import bootstrap

    return bootstrap.main(chosen.state_dir, chosen.log, chosen.ref, chosen.tag, chosen.pull)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
