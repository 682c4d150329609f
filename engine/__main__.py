"""The host engine's entry: `python3 engine.pyz COMMAND [flags]` (or `python3 -m engine`).

    deploy     deploy the compose project at a ref and tag, prove it healthy, report
    reset      the demo as new: the last deploy's settings again on fresh data (docs/reset.md)
    health     the health of every service now, and the last deploy's report
    bootstrap  first boot (user_data): OS setup, recorded for the remote deploy
    firewall   put the last deploy's scanner firewall back (the boot unit runs it before Docker)
    install    OS setup only: Docker Engine, the compose plugin, git

Modules are imported per command: user_data carries only what `bootstrap` needs.
"""

from __future__ import annotations

import argparse
import sys

from engine import BOOTSTRAP_LOG, STATE_DIR


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command in ("health", "bootstrap", "firewall"):
        p = argparse.ArgumentParser(prog=f"engine {command}", allow_abbrev=False)
        p.add_argument("--state-dir", default=STATE_DIR)
        if command == "bootstrap":
            p.add_argument("--log", default=BOOTSTRAP_LOG)
            # The first deploy's, from user_data (validated by the program: infra/commands.py).
            p.add_argument("--ref", default="")
            p.add_argument("--tag", default="")
            p.add_argument("--pull", action="append", default=[], metavar="IMAGE_REF")
        chosen = p.parse_args(args)
        if command == "health":
            from engine import health

            return health.main(chosen.state_dir)
        if command == "firewall":
            from engine import firewallboot

            return firewallboot.main(chosen.state_dir)
        from engine import bootstrap

        return bootstrap.main(chosen.state_dir, chosen.log, chosen.ref, chosen.tag, chosen.pull)
    if command == "install":
        from engine import install

        return install.main()
    if command == "deploy":
        from engine import deploy, settings

        try:
            chosen = settings.from_args(args)
        except settings.SettingsError as err:
            print(f"engine deploy: {err}", file=sys.stderr)
            return 2
        return deploy.Deploy(chosen).run()
    if command == "reset":
        from engine import reset

        return reset.main(args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
