"""The host engine's entry: `python3 engine.pyz COMMAND [flags]` (or `python3 -m engine`).

    deploy     deploy the compose project at a ref and tag, prove it healthy, report
    reset      the demo as new: the last healthy deploy's settings again on fresh data (docs/reset.md)
    health     the health of every service now, and the last deploy's report
    bootstrap  first boot (user_data): OS setup, recorded for the remote deploy
    firewall   put the last deploy's scanner firewall back (the boot unit runs it before Docker)
    install    OS setup only: Docker Engine, the compose plugin, git

Modules are imported per command. user_data's boot zipapp has its own entry
(engine/boot_entry.py): a new command here leaves the instances alone.
"""

from __future__ import annotations

import argparse
import sys

from engine import STATE_DIR


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "bootstrap":  # the boot zipapp's own entry: its flags are parsed there
        from engine import boot_entry

        return boot_entry.main(argv)
    if command in ("health", "firewall"):
        p = argparse.ArgumentParser(prog=f"engine {command}", allow_abbrev=False)
        p.add_argument("--state-dir", default=STATE_DIR)
        chosen = p.parse_args(args)
        if command == "health":
            from engine import health

            return health.main(chosen.state_dir)
        if command == "firewall":
            from engine import firewallboot

            return firewallboot.main(chosen.state_dir)
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
